import assert from 'node:assert/strict';
import { cpSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { DataDirLock } from '../../../src/node/data-dir-lock.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { removeDir, tempDir } from '../../helpers/processes.js';

/*
 * `join ... &` holds its data directory while it enrolls, and a command typed meanwhile waits for
 * the identity instead of failing with "no identity" (README walkthrough review F7: bob was added
 * to no home when the second home's lines ran together). The enrollment is stood in for by copying
 * an identity that `init` made elsewhere into the held directory.
 */
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

test('a user command given while a join still enrolls in the directory waits for its identity, then goes on', async () => {
  const [made, joining] = [tempDir('p2psip-made-'), tempDir('p2psip-joining-')];
  dirs.push(made, joining);
  assert.equal(await main(['init', '--data', made, '--overlay', 'waits.example'], () => {}), 0);
  const lock = await DataDirLock.take(joining, silentLogger); // as join takes it before it enrolls
  let output = '';
  const listing = main(['user', 'list', '--data', joining, '--json'], (text) => (output += text));
  await new Promise((resolve) => setTimeout(resolve, 600));
  for (const file of readdirSync(made)) cpSync(path.join(made, file), path.join(joining, file), { recursive: true }); // enrolled
  await new Promise((resolve) => setTimeout(resolve, 600));
  await lock.release(); // join --no-start ends
  assert.equal(await listing, 0, output);
  assert.deepEqual(JSON.parse(output).users, []);
});

test('a user command in a directory nobody holds and with no identity fails at once', async () => {
  const empty = tempDir('p2psip-empty-');
  dirs.push(empty);
  const started = Date.now();
  assert.equal(await main(['user', 'list', '--data', empty], () => {}), 2, 'a usage error: no identity');
  assert.ok(Date.now() - started < 2_000);
});
