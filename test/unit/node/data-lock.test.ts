import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { controlSocketPath } from '../../../src/node/control-protocol.js';
import { ControlServer } from '../../../src/node/control-server.js';
import { DataDirLock, socketAnswers } from '../../../src/node/data-dir-lock.js';
import { ConfigError } from '../../../src/node/config/overlay-config.js';
import { PeerDaemon, type PeerDaemonOptions } from '../../../src/node/peer-daemon.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { removeDir, tempDir } from '../../helpers/processes.js';

/*
 * One peer per data directory: the lock is the control socket, bound before anything else is
 * opened (data-dir-lock.ts). A second peer is refused, even at the same instant; a socket file a
 * killed peer left behind locks nothing.
 */
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

function dataDir(): string {
  const dir = tempDir('p2psip-lock-');
  dirs.push(dir);
  return dir;
}

const take = (dir: string) => DataDirLock.take(dir, silentLogger);
const answers = (dir: string) => socketAnswers(controlSocketPath(dir));

/** One request on the control socket, its answer. */
function ask(dir: string): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(controlSocketPath(dir));
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('end', () => resolve(JSON.parse(text)));
    socket.on('error', reject);
    socket.write('{"command":"status"}\n');
  });
}

test('a data directory is locked by its live control socket: a second peer on it is refused before it touches anything', async () => {
  const dir = dataDir();
  const first = await take(dir);
  assert.equal(await answers(dir), true);
  await assert.rejects(
    PeerDaemon.start({ dataDir: dir, log: silentLogger } as unknown as PeerDaemonOptions),
    (error: unknown) => error instanceof ConfigError && /already running on/.test(error.message),
  );
  assert.equal(await answers(dir), true, 'the first peer still holds it');
  await first.release();
  assert.equal(await answers(dir), false);
  assert.equal(existsSync(controlSocketPath(dir)), false);
});

test('while the peer starts the control socket says so; then the control server answers on it', async () => {
  const dir = dataDir();
  const lock = await take(dir);
  assert.match((await ask(dir)).error ?? '', /starting/);
  new ControlServer(async () => ({ up: true }), silentLogger).listen(lock);
  assert.deepEqual(await ask(dir), { ok: true, result: { up: true } });
  await lock.release();
});

test('two peers started on one directory at the same instant: exactly one takes it', async () => {
  const dir = dataDir();
  const results = await Promise.allSettled([take(dir), take(dir), take(dir)]);
  const taken = results.filter((result) => result.status === 'fulfilled') as PromiseFulfilledResult<DataDirLock>[];
  assert.equal(taken.length, 1);
  for (const result of results) if (result.status === 'rejected') assert.match((result.reason as Error).message, /already running on/);
  await taken[0]!.value.release();
  await (await take(dir)).release();
});

test('the lock names the directory, not its spelling: a symlink to a locked directory is refused too', async () => {
  const dir = dataDir();
  const link = `${dataDir()}/alias`;
  symlinkSync(dir, link);
  const lock = await take(dir);
  await assert.rejects(take(`${link}/`), /already running on/);
  await (await take(dataDir())).release(); // another directory is free
  await lock.release();
});

/** Another process listening on `dir`'s control socket; the function returned kills it (SIGKILL) and waits for its end. */
async function listenerInChild(dir: string): Promise<() => Promise<void>> {
  const file = controlSocketPath(dir);
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
}

test('the socket a killed peer left behind (nobody listening on it) does not lock the directory', async () => {
  const dir = dataDir();
  const file = controlSocketPath(dir);
  // A process that listens on the control socket and is then killed, as a crash or a power cut leaves it.
  const kill = await listenerInChild(dir);
  await assert.rejects(take(dir), /already running on/);
  await kill();
  assert.equal(existsSync(file), true, 'the socket file is still there');
  assert.equal(await answers(dir), false);
  const next = await take(dir);
  assert.equal(await answers(dir), true);
  await next.release();
});

/** A socket file whose listener was killed: what a crashed peer leaves. */
async function deadSocket(dir: string): Promise<void> {
  await (await listenerInChild(dir))();
}

test("peers started at the same instant on a directory a killed peer left its socket in: exactly one takes it (one takeover at a time)", async () => {
  for (let round = 0; round < 5; round++) {
    const dir = dataDir();
    await deadSocket(dir);
    const results = await Promise.allSettled([take(dir), take(dir), take(dir)]);
    const taken = results.filter((result) => result.status === 'fulfilled') as PromiseFulfilledResult<DataDirLock>[];
    assert.equal(taken.length, 1, `round ${round}: ${taken.length} took it`);
    for (const result of results) if (result.status === 'rejected') assert.match((result.reason as Error).message, /already running on/);
    assert.equal(await answers(dir), true);
    await taken[0]!.value.release();
    assert.equal(existsSync(`${controlSocketPath(dir)}.takeover`), false, 'no marker left behind');
  }
});

test('a takeover marker left by a start that died in the middle of one is set aside once 10 s off, in the past or in the future (a router booted with its clock behind)', async () => {
  for (const offsetMs of [-60_000, 3_600_000]) {
    const dir = dataDir();
    await deadSocket(dir);
    const marker = `${controlSocketPath(dir)}.takeover`;
    writeFileSync(marker, '');
    const stamp = new Date(Date.now() + offsetMs);
    utimesSync(marker, stamp, stamp);
    const lock = await take(dir);
    assert.equal(await answers(dir), true, `marker ${offsetMs} ms off`);
    await lock.release();
    assert.equal(existsSync(marker), false);
  }
});

test("a directory that does not exist yet (an open-mode peer's first start) is made, owner-only, and locked", async () => {
  const dir = `${dataDir()}/new/peer`;
  const lock = await take(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(await answers(dir), true);
  await lock.release();
});
