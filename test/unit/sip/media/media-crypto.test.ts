import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../../../src/runtime/random.js';
import { createCallKey, MEDIA_SEAL_OVERHEAD, mediaSealers, signStatement, statementSignedBy } from '../../../../src/usages/sip/media/media-crypto.js';
import { testIdentity } from '../../../helpers/fixtures.js';

/*
 * The sealed internet leg of a call between two homes: keys agreed between the two peers'
 * identities for one call only; RTP sealed both ways and opened once; forgeries, damage,
 * replays and another call's keys refused and counted.
 */
const home = testIdentity(1);
const other = testIdentity(2);
const random = new SeededRandom(16);

function call(callId: string) {
  const offer = { ephemeral: createCallKey(random) };
  const answer = { ephemeral: createCallKey(random) };
  const [offererKey, answererKey] = [offer.ephemeral.publicKey, answer.ephemeral.publicKey];
  return {
    offer,
    answer,
    a: mediaSealers(offer.ephemeral, 'offerer', offererKey, answererKey, callId, '0/rtp'),
    b: mediaSealers(answer.ephemeral, 'answerer', offererKey, answererKey, callId, '0/rtp'),
  };
}
const rtp = (n: number) => new Uint8Array(172).fill(n);

test("each home checks the other's statement against its certificate: this SDP, call, role, home, sequence and time only", () => {
  const statement = { callId: 'call-1@smiths', role: 'offerer' as const, publicKey: createCallKey(random).publicKey, toHome: 'ab'.repeat(16), sequence: 1, time: 1_800_000_000, body: 'v=0\r\nm=audio 40000 RTP/AVP 0' };
  const signature = signStatement(home, statement);
  assert.ok(statementSignedBy(statement, signature, home.certificate.claims.publicKey));
  assert.equal(statementSignedBy(statement, signature, other.certificate.claims.publicKey), false, "not another node's");
  for (const changed of [{ callId: 'call-2@smiths' }, { role: 'answerer' as const }, { toHome: 'cd'.repeat(16) }, { sequence: 2 }, { time: 1_800_000_001 }, { body: 'v=0\r\nm=audio 40002 RTP/AVP 0' }, { publicKey: createCallKey(random).publicKey }]) {
    assert.equal(statementSignedBy({ ...statement, ...changed }, signature, home.certificate.claims.publicKey), false, JSON.stringify(Object.keys(changed)));
  }
});

test('RTP sealed at one home opens at the other, both ways; nothing of it is readable on the way', () => {
  const { a, b } = call('call-1@smiths');
  const sealed = a.send.seal(rtp(7));
  assert.equal(sealed.length, 172 + MEDIA_SEAL_OVERHEAD);
  assert.equal(Buffer.from(sealed).includes(Buffer.from(rtp(7).subarray(0, 32))), false, 'no plaintext RTP on the internet');
  assert.deepEqual(b.receive.open(sealed), { packet: rtp(7), flags: 0, newest: true });
  assert.deepEqual(a.receive.open(b.send.seal(rtp(9), 1)), { packet: rtp(9), flags: 1, newest: true });
  // RTCP is a channel of its own, under keys of its own.
  const { offer, answer } = call('call-1@smiths');
  const rtcp = mediaSealers(offer.ephemeral, 'offerer', offer.ephemeral.publicKey, answer.ephemeral.publicKey, 'call-1@smiths', '0/rtcp');
  const rtpSide = mediaSealers(answer.ephemeral, 'answerer', offer.ephemeral.publicKey, answer.ephemeral.publicKey, 'call-1@smiths', '0/rtp');
  assert.equal(rtpSide.receive.open(rtcp.send.seal(rtp(5))), undefined);
});

test('a replay, a flipped bit, a short datagram and another call\'s packet are dropped and counted', () => {
  const { a, b } = call('call-1@smiths');
  const first = a.send.seal(rtp(1));
  assert.ok(b.receive.open(first));
  assert.equal(b.receive.open(first), undefined);
  const damaged = a.send.seal(rtp(2));
  damaged[20] ^= 1;
  assert.equal(b.receive.open(damaged), undefined);
  assert.equal(b.receive.open(new Uint8Array(10)), undefined);
  const elsewhere = call('call-2@smiths');
  elsewhere.a.send.seal(rtp(3));
  assert.equal(b.receive.open(elsewhere.a.send.seal(rtp(3))), undefined, 'keys are never shared across calls');
  assert.deepEqual(b.receive.counters, { opened: 1, failedAead: 3, replayed: 1 });
  // A forgery did not burn its counter: the genuine packet with that counter still opens.
  assert.deepEqual(b.receive.open(a.send.seal(rtp(4))), { packet: rtp(4), flags: 0, newest: true });
});

test('a datagram that opens after a later one did is not the newest (held back on the way, or caught and sent on)', () => {
  const { a, b } = call('call-1@smiths');
  const held = a.send.seal(rtp(1));
  assert.equal(b.receive.open(a.send.seal(rtp(2)))?.newest, true);
  assert.equal(b.receive.open(held)?.newest, false, 'it still opens (reordered media plays), but says nothing of the path');
  assert.equal(b.receive.open(a.send.seal(rtp(3)))?.newest, true);
});

test('the flags byte (the sender\'s word about the path) is under the tag: changed on the way, the datagram does not open', () => {
  const { a, b } = call('call-1@smiths');
  const sealed = a.send.seal(rtp(1), 0);
  assert.equal(sealed[6], 0, 'after the 6-byte counter, in the clear');
  const flipped = new Uint8Array(sealed);
  flipped[6] = 1; // a relay peer carrying the overlay link would keep the call on itself this way
  assert.equal(b.receive.open(flipped), undefined);
  assert.deepEqual(b.receive.counters, { opened: 0, failedAead: 1, replayed: 0 });
  assert.deepEqual(b.receive.open(sealed), { packet: rtp(1), flags: 0, newest: true }, 'the genuine datagram still opens');
});
