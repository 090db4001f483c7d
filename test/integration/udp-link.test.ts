import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HopTransport } from '../../src/link/hop-transport.js';
import { UdpLink } from '../../src/link/udp-link.js';
import { SystemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { SystemRandom } from '../../src/runtime/random.js';
import type { OverlayMessage } from '../../src/wire/message.js';
import { freeUdpPort } from '../helpers/processes.js';

/* The hop transport over real UDP sockets on loopback (dgram-as-promised underneath). */
function message(size: number, tx: number): OverlayMessage {
  return {
    header: { overlay: 1, configSequence: 0, ttl: 100, fragment: { offset: 0, total: size }, via: [], destinations: [{ kind: 0, id: 2n }], transactionId: new Uint8Array(8).fill(tx), code: 23 },
    payload: new Uint8Array(size).map((_, i) => (i * 7 + tx) & 0xff),
  };
}

test('two UDP links on loopback exchange small and fragmented 20 KB messages, acknowledged', async () => {
  const clock = new SystemClock();
  const random = new SystemRandom();
  const a = new HopTransport(await UdpLink.open({ host: '127.0.0.1', port: 0 }, silentLogger), clock, 1n, () => random.u32() & 0x3fffffff, silentLogger);
  const b = new HopTransport(await UdpLink.open({ host: '127.0.0.1', port: 0 }, silentLogger), clock, 2n, () => random.u32() & 0x3fffffff, silentLogger);
  try {
    const got = new Map<number, Uint8Array>();
    b.onMessage((from, sender, m) => {
      assert.equal(sender, 1n);
      assert.equal(from.port, a.localAddress.port);
      got.set(m.header.transactionId[0], m.payload);
    });
    const sent = [message(100, 1), message(20_000, 2), message(1500, 3)];
    const results = await Promise.all(sent.map((m) => new Promise<boolean>((resolve) => a.send(b.localAddress, m, resolve))));
    assert.deepEqual(results, [true, true, true]);
    for (const m of sent) assert.deepEqual(Buffer.from(got.get(m.header.transactionId[0])!), Buffer.from(m.payload));
    assert.ok(a.counters.datagramsSent >= 20, 'the 20 KB message went out in fragments');
    assert.equal(b.counters.malformed, 0);
  } finally {
    await a.stop();
    await b.stop();
  }
  assert.equal(clock.pendingTimers(), 0, 'no timer left behind');
});

test('a relay port range: sockets take its free ports only, and a full range is a clear error; a datagram sent just before close still leaves', async () => {
  const low = await freeUdpPort();
  const range = { low, high: low + 1 }; // freeUdpPort keeps port + 1 free too
  const random = new SystemRandom();
  const links = [await UdpLink.openInRange({ host: '127.0.0.1', port: 0 }, range, random, silentLogger), await UdpLink.openInRange({ host: '127.0.0.1', port: 0 }, range, random, silentLogger)];
  try {
    assert.deepEqual(links.map((l) => l.localAddress.port).sort(), [low, low + 1]);
    await assert.rejects(UdpLink.openInRange({ host: '127.0.0.1', port: 0 }, range, random, silentLogger), /no free UDP port in/);
    // What was said last before close (a relay allocation's Refresh 0 at shutdown) is not lost.
    const heard = new Promise<Uint8Array | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 2000);
      links[1].onDatagram((_from, datagram) => {
        clearTimeout(timer);
        resolve(datagram);
      });
    });
    links[0].send(links[1].localAddress, new Uint8Array([7, 7]));
    await links[0].close();
    assert.deepEqual([...((await heard) ?? [])], [7, 7], 'the datagram arrived');
  } finally {
    for (const link of links) await link.close();
  }
});
