import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { readCborFile, writeCborFile } from '../../../src/node/cbor-file.js';
import { removeDir, tempDir } from '../../helpers/processes.js';

/*
 * The small state files (the node's identity and key, users, certificates, the configuration):
 * replaced whole or not at all. A disk that fills during a write (write(2) then writes what fits)
 * must leave the good file as it was, not a short one that keeps the peer from starting. The
 * child below writes under a file-size limit (ulimit -f), which cuts a write short the same way.
 */
const BIG = ['k'.repeat(100_000)];

// Child mode: this same compiled file, run with P2PSIP_WRITE_UNDER_LIMIT=FILE, tries one write.
const limited = process.env.P2PSIP_WRITE_UNDER_LIMIT;
if (limited) {
  try {
    writeCborFile(limited, BIG);
    process.stdout.write('written');
  } catch (error) {
    process.stdout.write(`refused ${(error as NodeJS.ErrnoException).code}`);
  }
  process.exit(0);
} else {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  test('a state file is replaced whole, owner-only, with no temp file left', () => {
    const dir = tempDir('p2psip-cbor-file-');
    dirs.push(dir);
    const file = path.join(dir, 'state.cbor');
    writeCborFile(file, [1]);
    writeCborFile(file, BIG);
    assert.ok((readCborFile(file, 1 << 20) as string[])[0] === BIG[0], 'the new value, whole');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['state.cbor']);
  });

  test("root writing into another user's data directory (sudo p2psip user add) leaves the file that user's, so the service can still read it (durability review F9)", { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
    const dir = tempDir('p2psip-cbor-file-');
    dirs.push(dir);
    chownSync(dir, 65534, 65534); // the service's user, say
    const file = path.join(dir, 'sip-users.cbor');
    writeCborFile(file, [1]);
    assert.deepEqual([statSync(file).uid, statSync(file).gid], [65534, 65534]);
  });

  test('a link planted under the temp name is not written through (root writes state files too: review 22, 5)', () => {
    const dir = tempDir('p2psip-cbor-file-');
    dirs.push(dir);
    const target = path.join(dir, 'elsewhere');
    writeFileSync(target, 'precious');
    const file = path.join(dir, 'sip-users.cbor');
    symlinkSync(target, `${file}.${process.pid}.tmp`);
    writeCborFile(file, [1]);
    assert.equal(readFileSync(target, 'utf8'), 'precious');
    assert.deepEqual(readCborFile(file, 1024), [1]);
  });

  test('a write the disk cuts short fails, and the good file stays as it was (durability review 1)', () => {
    const dir = tempDir('p2psip-cbor-file-');
    dirs.push(dir);
    const file = path.join(dir, 'identity.cbor');
    writeCborFile(file, [1]);
    // 8 KiB per file at most: the 100 kB value's first write(2) returns short, the next fails (EFBIG).
    const child = spawnSync('bash', ['-c', 'ulimit -f 8; exec "$0" "$1"', process.execPath, __filename], { env: { ...process.env, P2PSIP_WRITE_UNDER_LIMIT: file }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.stdout, 'refused EFBIG', child.stderr);
    assert.deepEqual(readCborFile(file, 1 << 20), [1], 'the old value, whole');
    assert.deepEqual(readdirSync(dir), ['identity.cbor'], 'no temp file left behind');
  });
}
