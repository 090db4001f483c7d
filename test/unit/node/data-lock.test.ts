import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { after, test } from 'node:test';
import { controlSocketPath } from '../../../src/node/control-protocol.js';
import { ControlServer, controlSocketAnswers } from '../../../src/node/control-server.js';
import { DataDirLock, lockName } from '../../../src/node/data-dir-lock.js';
import { ConfigError } from '../../../src/node/config/overlay-config.js';
import { PeerDaemon, type PeerDaemonOptions } from '../../../src/node/peer-daemon.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { removeDir, tempDir } from '../../helpers/processes.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

function dataDir(): string {
  const dir = tempDir('p2psip-lock-');
  dirs.push(dir);
  return dir;
}

test('a data directory is locked by its live control socket: a second peer on it is refused before it touches anything', async () => {
  const dir = dataDir();
  const first = new ControlServer(dir, async () => ({}), silentLogger);
  await first.listen();
  assert.equal(await controlSocketAnswers(dir), true);
  await assert.rejects(
    PeerDaemon.start({ dataDir: dir, log: silentLogger } as unknown as PeerDaemonOptions),
    (error: unknown) => error instanceof ConfigError && /already running on/.test(error.message),
  );
  assert.equal(await controlSocketAnswers(dir), true, 'the first peer still holds it');
  await first.close();
  assert.equal(await controlSocketAnswers(dir), false);
});

test('the socket a killed peer left behind (nobody listening on it) does not lock the directory', async () => {
  const dir = dataDir();
  const file = controlSocketPath(dir);
  // A process that listens on the control socket and is then killed, as a crash or a power cut leaves it.
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  assert.equal(await controlSocketAnswers(dir), true);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  assert.equal(existsSync(file), true, 'the socket file is still there');
  assert.equal(await controlSocketAnswers(dir), false);
  const next = new ControlServer(dir, async () => ({}), silentLogger);
  await next.listen();
  assert.equal(await controlSocketAnswers(dir), true);
  await next.close();
});

test('two peers started on one directory at the same instant, before either listens: exactly one takes it', async () => {
  const dir = dataDir();
  const results = await Promise.allSettled([DataDirLock.take(dir), DataDirLock.take(dir), DataDirLock.take(dir)]);
  const taken = results.filter((result) => result.status === 'fulfilled') as PromiseFulfilledResult<DataDirLock>[];
  assert.equal(taken.length, 1);
  for (const result of results) if (result.status === 'rejected') assert.match((result.reason as Error).message, /already running on/);
  // The peer that lost the race is refused before it opens its storage or its sockets.
  await assert.rejects(
    PeerDaemon.start({ dataDir: dir, log: silentLogger } as unknown as PeerDaemonOptions),
    (error: unknown) => error instanceof ConfigError && /already running on .*lock/.test(error.message),
  );
  taken[0]!.value.release();
  await new Promise((resolve) => setImmediate(resolve));
  (await DataDirLock.take(dir)).release();
});

test('the lock names the directory, not its spelling: a symlink to a locked directory is refused too', async () => {
  const dir = dataDir();
  const link = `${dataDir()}/alias`;
  symlinkSync(dir, link);
  const lock = await DataDirLock.take(dir);
  await assert.rejects(DataDirLock.take(`${link}/`), /already running on/);
  (await DataDirLock.take(dataDir())).release(); // another directory is free
  lock.release();
});

test('a peer killed while holding the lock leaves nothing behind: the next start takes it', async () => {
  const dir = dataDir();
  const name = lockName(dir);
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(name)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  await assert.rejects(DataDirLock.take(dir), /already running on/);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  (await DataDirLock.take(dir)).release();
});
