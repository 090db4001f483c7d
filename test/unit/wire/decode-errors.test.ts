import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCbor, encodeCbor } from '../../../src/wire/cbor.js';
import { DecodeError } from '../../../src/wire/decode-error.js';
import { decodeFrame } from '../../../src/wire/frame.js';
import { joinReq } from '../../../src/wire/messages/join.js';
import { decodeStoredData } from '../../../src/wire/messages/stored-data.js';
import { updateReq } from '../../../src/wire/messages/update.js';
import { decodePayload } from '../../../src/wire/payload.js';
import { unhex } from '../../helpers/fixtures.js';
import { frameVectors } from '../../vectors/cases.js';

function rejects(bytes: Uint8Array, decode: (b: Uint8Array) => unknown, pathPart: string): void {
  assert.throws(
    () => decode(bytes),
    (error: unknown) => error instanceof DecodeError && error.path.includes(pathPart),
    `expected a DecodeError at ${pathPart}`,
  );
}

test('truncated CBOR is a DecodeError, not a crash', () => {
  const whole = frameVectors['data-frame-ping'];
  for (let cut = 0; cut < whole.length; cut += 7) rejects(whole.subarray(0, cut), decodeFrame, '$');
});

test('trailing bytes after the frame are rejected', () => {
  rejects(new Uint8Array([...frameVectors['ack-frame'], 0x00]), decodeFrame, '$');
});

test('oversize datagrams are rejected before decoding', () => {
  rejects(new Uint8Array(1501).fill(0x80), decodeFrame, '$');
});

test('wrong types are named by the path of the offending field', () => {
  rejects(encodeCbor([9, 1, 2]), decodeFrame, '$.type');
  rejects(encodeCbor([1, -1, 0]), decodeFrame, '$.seq');
  rejects(encodeCbor([1, 1.5, 0]), decodeFrame, '$.seq');
  rejects(encodeCbor([2, 1, new Uint8Array(15)]), decodeFrame, '$.sender');
  rejects(encodeCbor(['x']), joinReq.decode, '$.joinReq');
  rejects(encodeCbor([new Uint8Array(17)]), joinReq.decode, '$.joinReq.joiningPeerId');
  rejects(encodeCbor([[1, 9, [], []]]), updateReq.decode, '$.updateReq.view.type');
  rejects(encodeCbor([[1, 3, [[new Uint8Array(16), [new Uint8Array(5), 1]]], []]]), updateReq.decode, 'predecessors[0][1][0]');
});

test('maps, tags and floats where arrays and integers belong are rejected', () => {
  rejects(encodeCbor(new Map([[0, 1]])), decodeFrame, '$');
  rejects(unhex('c11a00000001'), decodeFrame, '$');
  rejects(unhex('83f97e000100'), decodeFrame, '$.type');
});

test('a data frame whose fragment runs past the message length is rejected', () => {
  const frame = decodeFrame(frameVectors['data-frame-ping']);
  assert.equal(frame.type, 0);
  if (frame.type !== 0) return;
  const bad = [0, 1, new Uint8Array(16), [1, 1, 0, 99, [10, 5], [], [[1, new Uint8Array(16)]], new Uint8Array(8), 23, new Uint8Array(4)]];
  rejects(encodeCbor(bad), decodeFrame, '$.message.fragment');
});

test('a payload without a signature is rejected', () => {
  rejects(encodeCbor([new Uint8Array(1), new Uint8Array(3)]), decodePayload, '$.payload');
  rejects(encodeCbor([new Uint8Array(1), new Uint8Array(3), new Uint8Array(0)]), decodePayload, '$.payload.signature');
});

test('a 64-bit field is an integer below 2^64: a float past 2^53 (1e300) or a bignum is refused, not turned into a number no field can carry on', () => {
  const stored = (time: unknown) => encodeCbor([time, 60, [0, true, new Uint8Array(1)], [new Uint8Array(1), new Uint8Array(64)]]);
  const decode = (bytes: Uint8Array) => decodeStoredData(decodeCbor(bytes, 1024), '$.value');
  rejects(stored(1e300), decode, '$.value.storageTime');
  rejects(stored(2 ** 60), decode, '$.value.storageTime'); // a float, however whole
  rejects(stored(1n << 64n), decode, '$.value.storageTime');
  assert.equal(decode(stored((1n << 64n) - 1n)).storageTime, (1n << 64n) - 1n);
  assert.equal(decode(stored(1_700_000_000_000n)).storageTime, 1_700_000_000_000n);
  assert.equal(decode(stored(5)).storageTime, 5n);
});
