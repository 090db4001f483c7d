import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Endpoint } from '../../../../src/usages/sip/media/sdp.js';
import { RelayStream, type Side } from '../../../../src/usages/sip/media/relay-stream.js';

/*
 * One anchored stream as phones and attackers meet it: symmetric latching to where a vouched
 * party really sends from, nothing heard from strangers or after latching from anyone else, and
 * nothing sent to a party on hold.
 */
function harness(offered: Record<Side, Endpoint>, vouched: Record<Side, string[]>) {
  const sent: { side: Side; to: Endpoint; bytes: number }[] = [];
  let clock = 0;
  const stream = new RelayStream(
    {
      a: { send: (bytes, to) => sent.push({ side: 'a', to, bytes: bytes.length }), offered: offered.a, vouched: vouched.a },
      b: { send: (bytes, to) => sent.push({ side: 'b', to, bytes: bytes.length }), offered: offered.b, vouched: vouched.b },
    },
    () => clock,
  );
  return { stream, sent, tick: (ms: number) => (clock += ms) };
}
const rtp = (n = 172) => new Uint8Array(n);
const phone = { address: '192.168.1.20', port: 10000 };
const far = { address: '203.0.113.9', port: 40000 };

test('a phone behind a NAT is latched where its packets come from, and audio flows both ways', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  // The far side speaks first: it goes to the phone's SDP address until the phone is heard.
  stream.receive('b', rtp(), far);
  assert.deepEqual(sent.at(-1), { side: 'a', to: phone, bytes: 172 });
  // The phone sends from another port than its SDP said (symmetric RTP): that is where it is.
  tick(20);
  stream.receive('a', rtp(), { address: '192.168.1.20', port: 10002 });
  assert.deepEqual(sent.at(-1), { side: 'b', to: far, bytes: 172 });
  stream.receive('b', rtp(), far);
  assert.deepEqual(sent.at(-1)?.to, { address: '192.168.1.20', port: 10002 });
  assert.deepEqual(stream.counters, { packetsIn: 3, packetsOut: 3, bytesIn: 516, bytesOut: 516, dropped: { stranger: 0, 'not-latched': 0, oversize: 0, 'no-target': 0 } });
  assert.equal(stream.lastPacketAt, 20);
});

test('a stranger who sends first neither injects audio nor latches the stream to itself', () => {
  const { stream, sent } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.receive('a', rtp(), { address: '192.168.1.66', port: 10000 });
  stream.receive('b', rtp(), { address: '198.51.100.7', port: 40000 });
  assert.equal(sent.length, 0);
  assert.equal(stream.counters.dropped.stranger, 2);
  assert.equal(stream.latchedTo('a'), undefined);
  // Once the parties are heard, even a vouched address from another port is not.
  stream.receive('a', rtp(), phone);
  stream.receive('a', rtp(), { address: '192.168.1.20', port: 9999 });
  assert.equal(stream.counters.dropped['not-latched'], 1);
  assert.equal(sent.length, 1);
});

test('a party on hold (c=0.0.0.0) or a refused stream gets nothing; an oversize datagram is not media', () => {
  const { stream, sent } = harness({ a: phone, b: { address: '0.0.0.0', port: 40000 } }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.receive('a', rtp(), phone);
  stream.receive('a', rtp(1501), phone);
  assert.equal(sent.length, 0);
  assert.deepEqual(stream.counters.dropped, { stranger: 0, 'not-latched': 0, oversize: 1, 'no-target': 1 });
});
