import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodeQrCode, reedSolomon } from '../../../src/cli/qr-code.js';

test('Reed-Solomon codewords match the worked example of version 1-M "HELLO WORLD"', () => {
  const data = [32, 91, 11, 120, 209, 114, 220, 77, 67, 64, 236, 17, 236, 17, 236, 17];
  assert.deepEqual(reedSolomon(data, 10), [196, 35, 39, 119, 235, 215, 231, 226, 93, 23]);
});

test('sizes follow the version the text needs', () => {
  assert.equal(encodeQrCode('hi').length, 21);
  assert.equal(encodeQrCode('x'.repeat(100)).length, 37); // version 5
  assert.equal(encodeQrCode('x'.repeat(250)).length, 57); // version 10
  assert.throws(() => encodeQrCode('x'.repeat(300)), RangeError);
});

/** Writes the code as a PBM image (4 pixels a module, quiet zone of 4) and reads it back with zbarimg. */
function zbarRead(text: string): string | undefined {
  const modules = encodeQrCode(text);
  const scale = 4;
  const quiet = 4;
  const size = (modules.length + 2 * quiet) * scale;
  const rows: string[] = [];
  for (let y = 0; y < size; y++) {
    let row = '';
    for (let x = 0; x < size; x++) row += modules[Math.floor(y / scale) - quiet]?.[Math.floor(x / scale) - quiet] ? '1 ' : '0 ';
    rows.push(row);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'p2psip-qr-'));
  try {
    const file = path.join(dir, 'code.pbm');
    writeFileSync(file, `P1\n${size} ${size}\n${rows.join('\n')}\n`);
    const r = spawnSync('zbarimg', ['--raw', '-q', file], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.replace(/\n$/, '') : `zbarimg exit ${r.status}: ${r.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const zbar = spawnSync('zbarimg', ['--version']).status === 0;

test('zbarimg (an independent decoder) reads back what we encode, versions 1 to 10', { skip: zbar ? false : 'zbarimg not installed (.ci/run installs zbar-tools)' }, () => {
  const token = 'p2psip1:' + Buffer.from(Array.from({ length: 70 }, (_, i) => (i * 37) & 0xff)).toString('base64url');
  for (const text of ['hi', 'HELLO WORLD', token, 'y'.repeat(60), 'z'.repeat(150), 'w'.repeat(250)]) assert.equal(zbarRead(text), text);
});
