import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import type { StorageChange } from '../../src/storage/backends/backend.js';
import { FileBackend } from '../../src/storage/backends/file-backend.js';
import { SeededRandom } from '../../src/runtime/random.js';
import { testIdentity } from '../helpers/fixtures.js';
import { removeDir, tempDir } from '../helpers/processes.js';
import { userResource, value } from '../helpers/storage-fixtures.js';

/*
 * Crash safety of the file backend with real processes: a child writes values as fast as it can
 * (compacting now and then) and prints each acknowledgement; the test kills it with SIGKILL at a
 * random moment, reopens the log, and checks that every acknowledged value is there, intact, and
 * that nothing unreadable is served. Repeated at many random kill points.
 */
const alice = testIdentity(1);
const R = userResource(alice);
const KIND = 0xf0001;

function change(i: number): StorageChange {
  return { op: 'put', resource: R, kind: KIND, generation: BigInt(i + 1), data: value(alice, R, KIND, i % 64, `value number ${i} `.repeat(1 + (i % 7))) };
}

// Child mode: this same compiled file, run with P2PSIP_KILL_WRITER=DIR, is the writer.
const writerDir = process.env.P2PSIP_KILL_WRITER;
if (writerDir) {
  const backend = new FileBackend(writerDir);
  let next = backend.load().length;
  const writeOne = (): void => {
    const i = next++;
    backend.append([change(i)], (error) => {
      if (error) process.exit(3);
      process.stdout.write(`ack ${i}\n`);
      if (i % 97 === 96) backend.compact(() => Array.from({ length: i + 1 }, (_, j) => change(j)), () => {});
      writeOne();
    });
  };
  writeOne();
} else {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  test('after SIGKILL at 25 random moments, every acknowledged value is intact and nothing corrupt is served', async () => {
    const random = new SeededRandom(Number(process.env.KILL_SEED ?? 7));
    const dir = tempDir('p2psip-kill-');
    dirs.push(dir);
    let acknowledged = -1;
    for (let round = 0; round < 25; round++) {
      const child = spawn(process.execPath, [__filename], { env: { ...process.env, P2PSIP_KILL_WRITER: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
      let buffer = '';
      child.stdout!.on('data', (d: Buffer) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) if (line.startsWith('ack ')) acknowledged = Math.max(acknowledged, Number(line.slice(4)));
      });
      await new Promise((r) => setTimeout(r, 150 + random.float() * 250));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const loaded = new FileBackend(dir).load();
      const count = new Set(loaded.map((c) => (c.op === 'put' ? Number(c.generation) - 1 : -1)));
      for (let i = 0; i <= acknowledged; i++) assert.ok(count.has(i), `acknowledged value ${i} missing after kill ${round}`);
      for (const c of loaded) {
        assert.equal(c.op, 'put');
        if (c.op !== 'put') continue;
        const expected = change(Number(c.generation) - 1);
        assert.ok(expected.op === 'put');
        assert.deepEqual(Buffer.from(c.data.entry.value), Buffer.from(expected.data.entry.value));
      }
    }
    assert.ok(acknowledged > 50, `the writer made progress (${acknowledged + 1} acknowledged)`);
  });
}
