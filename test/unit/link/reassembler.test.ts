import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fragmentMessage } from '../../../src/link/fragmenter.js';
import { Reassembler } from '../../../src/link/reassembler.js';
import { SystemClock } from '../../../src/runtime/clock.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { OverlayMessage } from '../../../src/wire/message.js';

const random = new SeededRandom(5);
function message(size: number, tx = 1): OverlayMessage {
  const payload = random.bytes(size);
  return {
    header: { overlay: 1, configSequence: 0, ttl: 100, fragment: { offset: 0, total: size }, via: [1n, 2n], destinations: [{ kind: 0, id: 3n }], transactionId: new Uint8Array(8).fill(tx), code: 23 },
    payload,
  };
}

test('a 5,000-byte message splits into datagram-sized fragments and reassembles in any order', () => {
  const original = message(5000);
  const pieces = fragmentMessage(original, 1200);
  assert.ok(pieces.length >= 5);
  const r = new Reassembler(new SystemClock());
  const shuffled = [pieces[2], pieces[0], pieces[4], ...pieces.slice(5), pieces[1], pieces[3]];
  let whole: OverlayMessage | undefined;
  for (const p of shuffled) whole = r.accept('peer', p) ?? whole;
  assert.ok(whole);
  assert.deepEqual(whole.payload, original.payload);
  assert.equal(r.inProgress(), 0);
});

test('reassembly memory is bounded: first fragments without the rest are dropped past the limit', () => {
  const r = new Reassembler(new SystemClock(), { maxInProgress: 4, maxBytes: 100_000, timeoutMs: 1000 });
  for (let tx = 0; tx < 10; tx++) r.accept('attacker', fragmentMessage(message(4000, tx), 1200)[0]);
  assert.equal(r.inProgress(), 4);
  assert.equal(r.dropped, 6);
});

test('incomplete messages expire, freeing their memory', () => {
  const clock = new VirtualClock();
  const r = new Reassembler(clock, { maxInProgress: 4, maxBytes: 100_000, timeoutMs: 1000 });
  r.accept('p', fragmentMessage(message(4000, 1), 1200)[0]);
  clock.runUntil(2000);
  r.accept('p', fragmentMessage(message(4000, 2), 1200)[0]);
  assert.equal(r.inProgress(), 1);
});

test('empty or tiny fragments are refused, and pieces that add up to more than the message drop it: a sender cannot make a message held in thousands of pieces (fuzz review F4)', () => {
  const r = new Reassembler(new SystemClock());
  const piece = (offset: number, size: number, total: number, tx = 9): OverlayMessage => {
    const m = message(size, tx);
    return { header: { ...m.header, fragment: { offset, total } }, payload: m.payload };
  };
  for (let offset = 0; offset < 2000; offset++) r.accept('attacker', piece(offset, 0, 65_536));
  for (let offset = 0; offset < 2000; offset++) r.accept('attacker', piece(offset, 63, 65_536, 10));
  assert.equal(r.dropped, 4000);
  assert.equal(r.inProgress(), 0, 'no message was even begun');

  // Overlapping pieces: more bytes than the message has.
  r.accept('attacker', piece(0, 1000, 1500, 11));
  assert.equal(r.inProgress(), 1);
  r.accept('attacker', piece(100, 1000, 1500, 11));
  assert.equal(r.inProgress(), 0, 'the malformed message is dropped at once');

  // A last piece may be small; a message cut into 64-byte pieces still comes whole.
  const original = message(300, 12);
  let whole: OverlayMessage | undefined;
  for (let offset = 0; offset < 300; offset += 64) {
    whole = r.accept('peer', { header: { ...original.header, fragment: { offset, total: 300 } }, payload: original.payload.subarray(offset, Math.min(300, offset + 64)) }) ?? whole;
  }
  assert.deepEqual(whole?.payload, original.payload);
});
