import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TRANSPORT_OPTIONS, HopTransport } from '../../../src/link/hop-transport.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { SimNetwork } from '../../../src/sim/sim-network.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Address } from '../../../src/wire/address.js';
import type { OverlayMessage } from '../../../src/wire/message.js';

function setup(loss: number) {
  const clock = new VirtualClock();
  const random = new SeededRandom(42);
  const network = new SimNetwork(clock, random, loss);
  const make = (id: bigint) => new HopTransport(network.addHost(), clock, id, () => random.u32() & 0xffff, silentLogger, DEFAULT_TRANSPORT_OPTIONS);
  return { clock, random, network, a: make(1n), b: make(2n) };
}

function message(size: number, tx: number): OverlayMessage {
  return {
    header: { overlay: 1, configSequence: 0, ttl: 100, fragment: { offset: 0, total: size }, via: [], destinations: [{ kind: 0, id: 2n }], transactionId: new Uint8Array(8).fill(tx), code: 23 },
    payload: new Uint8Array(size).fill(tx),
  };
}

test('over a link losing 10% of datagrams, every message arrives exactly once, large ones reassembled', () => {
  const { clock, a, b } = setup(0.1);
  const received: number[] = [];
  b.onMessage((_from, sender, m) => {
    assert.equal(sender, 1n);
    received.push(m.header.transactionId[0]);
    assert.equal(m.payload.length, m.header.transactionId[0] % 3 === 0 ? 4000 : 100);
  });
  let acked = 0;
  for (let tx = 1; tx <= 60; tx++) a.send(b.localAddress, message(tx % 3 === 0 ? 4000 : 100, tx), (ok) => ok && acked++);
  clock.runUntil(60_000);
  assert.deepEqual([...received].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1));
  assert.equal(acked, 60);
  assert.ok(a.counters.retransmissions > 0, 'losses were repaired by retransmission');
  assert.ok(b.counters.duplicates > 0 || a.counters.retransmissions > 0);
});

test('a vanished peer is reported as a link failure after the retransmissions run out', () => {
  const { clock, a } = setup(0);
  const gone: Address = { host: '198.18.9.9', port: 6084 };
  const failures: Address[] = [];
  let result: boolean | undefined;
  a.onLinkFailure((address) => failures.push(address));
  a.send(gone, message(100, 1), (ok) => (result = ok));
  clock.runUntil(30_000);
  assert.equal(result, false);
  assert.deepEqual(failures, [gone]);
  assert.equal(a.counters.retransmissions, DEFAULT_TRANSPORT_OPTIONS.maxTransmissions - 1);
});

test('idle watched links get keepalives; garbage datagrams are counted and dropped', () => {
  const { clock, network, a, b } = setup(0);
  a.setWatched([b.localAddress]);
  clock.runUntil(DEFAULT_TRANSPORT_OPTIONS.keepaliveIntervalMs * 3);
  assert.ok(a.counters.keepalivesSent >= 2);
  const stranger = network.addHost();
  stranger.send(b.localAddress, new Uint8Array([0x9f, 0xff, 0x00]));
  stranger.send(b.localAddress, new Uint8Array([0x42]));
  clock.runUntil(clock.now() + 1000);
  assert.equal(b.counters.malformed, 2);
});

test('keepaliveNow sends a keepalive on every watched link at once, busy or idle, and none on others', () => {
  const { clock, network, a, b } = setup(0);
  const c = network.addHost();
  a.setWatched([b.localAddress]);
  a.send(c.localAddress, message(100, 1), () => {});
  a.send(b.localAddress, message(100, 2), () => {});
  clock.runUntil(1_000); // b acked: nothing in flight to it, and the link is far from idle
  const before = a.counters.keepalivesSent;
  const heard = b.counters.datagramsReceived;
  a.keepaliveNow();
  assert.equal(a.counters.keepalivesSent, before + 1, 'one, to the watched link only');
  clock.runUntil(1_100);
  assert.equal(b.counters.datagramsReceived, heard + 1, 'and it arrived');
});

test('STUN-looking datagrams go to the STUN handler, not the overlay', () => {
  const { clock, network, b } = setup(0);
  const seen: number[] = [];
  b.onStun((_from, d) => seen.push(d[0]));
  network.addHost().send(b.localAddress, new Uint8Array([0x00, 0x01, 0x00, 0x00]));
  clock.runUntil(1000);
  assert.deepEqual(seen, [0x00]);
});

test('after giving up on a link, new frames to the same peer are not mistaken for duplicates', () => {
  const { clock, network, a, b } = setup(0);
  const got: number[] = [];
  b.onMessage((_f, _s, m) => got.push(m.header.transactionId[0]));
  a.send(b.localAddress, message(10, 1));
  clock.runUntil(1000);
  // Cut b off, let a give up, then reconnect.
  const bLink = (b as unknown as { link: { closed: boolean } }).link;
  bLink.closed = true;
  a.send(b.localAddress, message(10, 2));
  clock.runUntil(20_000);
  bLink.closed = false;
  a.send(b.localAddress, message(10, 3));
  clock.runUntil(25_000);
  assert.deepEqual(got, [1, 3]);
  void network;
});

test('a held link stays watched, whatever the watched list does, until every hold is released; then it idles out', () => {
  const { clock, a, b } = setup(0);
  const expired: Address[] = [];
  a.onLinkExpired((address) => expired.push(address));
  a.send(b.localAddress, message(100, 1));
  const releaseFirst = a.hold(b.localAddress);
  const releaseSecond = a.hold(b.localAddress);
  a.setWatched([b.localAddress]);
  a.setWatched([]); // the topology's neighbours changed: the hold keeps it
  releaseFirst();
  releaseFirst(); // twice is once
  const idleMs = DEFAULT_TRANSPORT_OPTIONS.idleLinkExpiryMs;
  clock.runUntil(clock.now() + idleMs * 2);
  assert.deepEqual(expired, [], 'held: kept alive by keepalives');
  const keepalives = a.counters.keepalivesSent;
  assert.ok(keepalives >= (idleMs * 2) / DEFAULT_TRANSPORT_OPTIONS.keepaliveIntervalMs - 1, `${keepalives} keepalives`);
  releaseSecond();
  clock.runUntil(clock.now() + idleMs * 2);
  assert.deepEqual(expired, [b.localAddress], 'released: expired as idle');
  assert.equal(a.counters.keepalivesSent, keepalives);
});

test('releasing a hold leaves a link the topology watches watched', () => {
  const { clock, a, b } = setup(0);
  const expired: Address[] = [];
  a.onLinkExpired((address) => expired.push(address));
  a.setWatched([b.localAddress]);
  a.hold(b.localAddress)();
  const keepalives = a.counters.keepalivesSent;
  clock.runUntil(clock.now() + DEFAULT_TRANSPORT_OPTIONS.idleLinkExpiryMs * 2);
  assert.deepEqual(expired, [], 'still watched');
  assert.ok(a.counters.keepalivesSent > keepalives);
});

test('a link is live while the far end was heard within a keepalive interval, or while it is watched; sending alone proves nothing', () => {
  const { clock, a, b } = setup(0);
  const gone: Address = { host: '198.18.9.9', port: 6084 };
  a.send(gone, message(100, 1), () => {});
  assert.equal(a.isLive(gone), false, 'a link only sent on was never heard');
  a.send(b.localAddress, message(100, 2), () => {});
  clock.runUntil(clock.now() + 1_000);
  assert.equal(a.isLive(b.localAddress), true, 'heard (its ack) a moment ago');
  clock.runUntil(clock.now() + DEFAULT_TRANSPORT_OPTIONS.keepaliveIntervalMs);
  assert.equal(a.isLive(b.localAddress), false, 'idle for a keepalive interval: a NAT may have closed its way in');
  const release = a.hold(b.localAddress);
  assert.equal(a.isLive(b.localAddress), true, 'watched: keepalives keep it open and would report its death');
  release();
  assert.equal(a.isLive(b.localAddress), false);
});

test('on an idle watched link a keepalive follows the last datagram within one interval, never later', () => {
  const { clock, a, b } = setup(0);
  a.setWatched([b.localAddress]);
  const interval = DEFAULT_TRANSPORT_OPTIONS.keepaliveIntervalMs;
  const sentAt: number[] = [];
  let count = a.counters.keepalivesSent;
  for (let t = 100; t <= 10 * interval; t += 100) {
    clock.runUntil(t);
    if (a.counters.keepalivesSent > count) sentAt.push(t);
    count = a.counters.keepalivesSent;
    // Now and then a message goes on the link, at a time that does not suit the sweep.
    if (t % (3 * interval) === 1_300) {
      a.send(b.localAddress, message(100, t % 250), () => {});
      sentAt.push(t);
    }
  }
  const gaps = sentAt.slice(1).map((t, i) => t - sentAt[i]);
  assert.ok(gaps.length >= 8, `keepalives: ${sentAt.length}`);
  assert.ok(gaps.every((gap) => gap <= interval), `gaps between datagrams: ${gaps.join(', ')} ms`);
});
