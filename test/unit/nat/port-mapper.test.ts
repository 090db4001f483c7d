import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Link } from '../../../src/link/link.js';
import { type PortMapping, PortMapper, type PortMappingIo } from '../../../src/nat/port-mapping/port-mapper.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * The port mapper against routers as they are, on virtual time: a scripted gateway answers PCP,
 * NAT-PMP and UPnP as real ones do (or misbehave), and we watch what the mapper asks and what it
 * would advertise (onChange).
 */
const GATEWAY = '198.19.1.1';
const HOST: Address = { host: '198.19.1.2', port: 6084 };
const EXTERNAL = '198.18.0.11';

interface Router {
  /** Answers a PCP/NAT-PMP request (bytes) with datagrams, or nothing. */
  udp(request: Uint8Array): Uint8Array[];
  http?(action: string, body: string): { status: number; body: string };
}

function world(router: Router) {
  const clock = new VirtualClock();
  const requests: Uint8Array[] = [];
  const soap: string[] = [];
  const io: PortMappingIo = {
    gateway: () => GATEWAY,
    openSocket: async (bind) => {
      let handler: (from: Address, d: Uint8Array) => void = () => {};
      const link: Link = {
        localAddress: { host: bind.host, port: 40000 },
        send: (_to, datagram) => {
          requests.push(datagram);
          for (const answer of router.udp(datagram)) clock.setTimer(1, () => handler({ host: GATEWAY, port: 5351 }, answer));
        },
        onDatagram: (h) => (handler = h),
        close: async () => {},
      };
      return link;
    },
    http: async (url, _method, headers, body) => {
      if (url.endsWith('rootDesc.xml')) return { status: 200, body: '<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service>' };
      const action = (headers.SOAPAction ?? '').split('#')[1]?.replace('"', '') ?? '';
      soap.push(`${action} ${body ?? ''}`);
      return router.http!(action, body ?? '');
    },
  };
  const advertised: (PortMapping | undefined)[] = [];
  const mapper = (protocols: ('pcp' | 'nat-pmp' | 'upnp-igd')[]) => {
    const m = new PortMapper(io, clock, new SeededRandom(1), silentLogger, HOST, protocols);
    m.onChange = (mapping) => advertised.push(mapping);
    return m;
  };
  /** Lets promises and virtual timers run for `ms`. */
  const run = async (ms: number) => {
    const end = clock.now() + ms;
    for (let i = 0; i < 2000 && clock.now() < end; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      clock.runUntil(Math.min(end, clock.now() + 100));
    }
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { clock, requests, soap, mapper, advertised, run };
}

/** A NAT-PMP router: address and map answers, with its epoch and what it grants. */
function pmpRouter(state: { up: boolean; epoch: () => number; lifetime: number; internalPort?: number }): Router {
  return {
    udp: (request) => {
      if (!state.up || request[0] !== 0) return [];
      const answer = Buffer.alloc(request[1] === 0 ? 12 : 16);
      answer[1] = 128 + request[1];
      answer.writeUInt32BE(state.epoch(), 4);
      if (request[1] === 0) answer.set([198, 18, 0, 11], 8);
      else {
        answer.writeUInt16BE(state.internalPort ?? Buffer.from(request).readUInt16BE(4), 8);
        answer.writeUInt16BE(Buffer.from(request).readUInt16BE(6), 10);
        answer.writeUInt32BE(Buffer.from(request).readUInt32BE(8) === 0 ? 0 : state.lifetime, 12);
      }
      return [answer];
    },
  };
}

test('a mapping that can be neither renewed nor made again is withdrawn at once, asked for again with backoff, and comes back with the router', async () => {
  const state = { up: true, epoch: () => 1000, lifetime: 120 };
  const { mapper, advertised, run, requests } = world(pmpRouter(state));
  const m = mapper(['nat-pmp']);
  const mapped = m.map();
  await run(1000);
  assert.equal((await mapped)?.external.host, EXTERNAL);
  state.up = false; // the router stops answering
  await run(61_000); // the renewal at half of 120 s fails, and so does mapping again
  assert.equal(m.mapping, undefined, 'withdrawn: nothing advertised that nobody forwards');
  assert.equal(advertised.at(-1), undefined);
  const asked = requests.length;
  await run(29_000);
  assert.equal(requests.length, asked, 'not asked again at once');
  state.up = true;
  await run(2_000); // the retry 30 s after the loss
  assert.equal((m.mapping as PortMapping | undefined)?.external.host, EXTERNAL, 'back');
  const last = advertised[advertised.length - 1] as PortMapping | undefined;
  assert.equal(last?.external.host, EXTERNAL, 'advertised again');
  assert.ok(m.counters.lost >= 1 && m.counters.retries >= 1);
});

test('a success with lifetime 0 is no success: no renewal loop', async () => {
  const { mapper, run, requests } = world(pmpRouter({ up: true, epoch: () => 5, lifetime: 0 }));
  const m = mapper(['nat-pmp']);
  const mapped = m.map();
  await run(1000);
  assert.equal(await mapped, undefined);
  await run(10_000);
  assert.ok(requests.length <= 4, `requests sent: ${requests.length}`);
});

test('a NAT-PMP answer for another internal port is not ours; a router whose epoch goes back rebooted', async () => {
  const stray = world(pmpRouter({ up: true, epoch: () => 5, lifetime: 3600, internalPort: 9999 }));
  const m1 = stray.mapper(['nat-pmp']);
  const p1 = m1.map();
  await stray.run(1000);
  assert.equal(await p1, undefined);
  assert.ok(m1.counters.strayAnswers >= 1);

  let epoch = 100_000;
  const rebooting = world(pmpRouter({ up: true, epoch: () => epoch, lifetime: 120 }));
  const m2 = rebooting.mapper(['nat-pmp']);
  const p2 = m2.map();
  await rebooting.run(1000);
  assert.ok(await p2);
  epoch = 3; // the router restarted meanwhile
  await rebooting.run(61_000);
  assert.equal(m2.counters.routerReboots, 1);
  assert.ok(m2.mapping, 'the renewal made the mapping again');
});

test('a router that reboots forgets the mapping: an hour-long mapping is renewed every minute, so it is back within one', async () => {
  let epoch = 50_000;
  const router = world(pmpRouter({ up: true, epoch: () => epoch, lifetime: 3600 }));
  const m = router.mapper(['nat-pmp']);
  const mapped = m.map();
  await router.run(1000);
  assert.ok(await mapped);
  const asked = router.requests.length;
  epoch = 2; // rebooted: its table is empty, its epoch starts again
  await router.run(61_000);
  assert.ok(router.requests.length > asked, 'asked again within the minute');
  assert.equal(m.counters.routerReboots, 1, 'the reboot is noticed by its epoch');
  assert.ok(m.mapping, 'the mapping is back');
});

test('NAT-PMP removal names external port 0 and lifetime 0 (RFC 6886 s3.4)', async () => {
  const { mapper, run, requests } = world(pmpRouter({ up: true, epoch: () => 5, lifetime: 3600 }));
  const m = mapper(['nat-pmp']);
  const mapped = m.map();
  await run(1000);
  await mapped;
  requests.length = 0;
  const removed = m.remove();
  await run(1000);
  await removed;
  const deletion = requests.map((r) => Buffer.from(r)).find((r) => r.length === 12 && r[1] === 1)!;
  assert.equal(deletion.readUInt16BE(6), 0, 'external port 0');
  assert.equal(deletion.readUInt32BE(8), 0, 'lifetime 0');
});

test('UPnP: a router that grants only permanent leases (725) is asked for one; one that holds our port for someone else (718) is asked for the next', async () => {
  let calls = 0;
  const router: Router = {
    udp: () => [],
    http: (action, body) => {
      if (action === 'GetExternalIPAddress') return { status: 200, body: `<NewExternalIPAddress>${EXTERNAL}</NewExternalIPAddress>` };
      calls++;
      if (!body.includes('<NewLeaseDuration>0</NewLeaseDuration>')) return { status: 500, body: '<errorCode>725</errorCode><errorDescription>OnlyPermanentLeasesSupported</errorDescription>' };
      if (body.includes('<NewExternalPort>6084</NewExternalPort>')) return { status: 500, body: '<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>' };
      return { status: 200, body: '' };
    },
  };
  const { mapper, run } = world(router);
  const m = mapper(['upnp-igd']);
  // The gateway was found by SSDP already (port-mapping-codecs.test.ts covers reading its answers).
  (m as unknown as { igd: unknown }).igd = { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', controlUrl: `http://${GATEWAY}/ctl` };
  const mapped = m.map();
  await run(1000);
  const mapping = await mapped;
  assert.deepEqual(mapping, { protocol: 'upnp-igd', external: { host: EXTERNAL, port: 6085 }, lifetimeSeconds: 0 });
  assert.equal(calls, 3);
  // Renewals remember what this router keeps: straight to a permanent lease on the next port tried.
  await run(61_000);
  assert.equal(calls, 4, 'the renewal asked once, for a permanent lease');
});

test("a relayed port gets a forward of its own from the router that forwards ours: the same protocol, the IGD already found, renewed and removed on its own", async () => {
  const leases = new Map<string, string>();
  const router: Router = {
    udp: () => [],
    http: (action, body) => {
      if (action === 'GetExternalIPAddress') return { status: 200, body: `<NewExternalIPAddress>${EXTERNAL}</NewExternalIPAddress>` };
      const external = /<NewExternalPort>(\d+)</.exec(body)?.[1] ?? '';
      if (action === 'AddPortMapping') leases.set(external, /<NewInternalPort>(\d+)</.exec(body)?.[1] ?? '');
      if (action === 'DeletePortMapping') leases.delete(external);
      return { status: 200, body: '' };
    },
  };
  const { mapper, run, requests, soap } = world(router);
  const m = mapper(['pcp', 'nat-pmp', 'upnp-igd']);
  assert.equal(m.forPort(45000), undefined, 'no router has granted us anything yet');
  (m as unknown as { igd: unknown }).igd = { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', controlUrl: `http://${GATEWAY}/ctl` };
  const mapped = m.map();
  await run(3000);
  assert.equal((await mapped)?.protocol, 'upnp-igd');
  const asked = requests.length;
  const relayed = m.forPort(45000)!;
  const forwarded = relayed.map();
  await run(1000);
  assert.deepEqual(await forwarded, { protocol: 'upnp-igd', external: { host: EXTERNAL, port: 45000 }, lifetimeSeconds: 3600 });
  assert.equal(requests.length, asked, 'no PCP, NAT-PMP or SSDP asked again: straight to the IGD that granted ours');
  assert.deepEqual([...leases.entries()].sort(), [['45000', '45000'], ['6084', '6084']]);
  const adds = soap.filter((s) => s.startsWith('AddPortMapping')).length;
  await run(61_000);
  assert.ok(soap.filter((s) => s.startsWith('AddPortMapping')).length >= adds + 2, 'both renewed within the minute');
  const removed = relayed.remove();
  await run(1000);
  await removed;
  assert.deepEqual([...leases.keys()], ['6084'], 'only the relayed forward is removed');
});

test('no forward outlives remove(): an answer still under way is waited for and deleted; an added forward whose external address cannot be had is given back; a permanent-only router gets no relayed forwards', async () => {
  // A UPnP router that answers slowly and keeps a table of leases.
  const leases = new Map<string, string>();
  let externalIp: string | undefined = EXTERNAL;
  const router: Router = {
    udp: () => [],
    http: (action, body) => {
      const external = /<NewExternalPort>(\d+)</.exec(body)?.[1] ?? '';
      if (action === 'GetExternalIPAddress') return externalIp ? { status: 200, body: `<NewExternalIPAddress>${externalIp}</NewExternalIPAddress>` } : { status: 500, body: '<errorCode>501</errorCode>' };
      if (action === 'AddPortMapping') leases.set(external, /<NewLeaseDuration>(\d+)</.exec(body)?.[1] ?? '');
      if (action === 'DeletePortMapping') leases.delete(external);
      return { status: 200, body: '' };
    },
  };
  const igd = { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', controlUrl: `http://${GATEWAY}/ctl` };
  const { mapper, run } = world(router);
  const m = mapper(['upnp-igd']);
  (m as unknown as { igd: unknown }).igd = igd;
  const mapping = m.map();
  // remove() called while AddPortMapping is under way: the forward it makes is deleted, not left.
  const removed = m.remove();
  await run(1000);
  assert.equal(await mapping, undefined);
  await removed;
  assert.deepEqual([...leases.keys()], [], 'nothing left on the router');

  // AddPortMapping succeeds but the router will not say its external address: the forward goes back.
  externalIp = undefined;
  const second = mapper(['upnp-igd']);
  (second as unknown as { igd: unknown }).igd = igd;
  const failed = second.map();
  await run(1000);
  assert.equal(await failed, undefined);
  assert.deepEqual([...leases.keys()], [], 'the unused forward was deleted');

  // A router that keeps only permanent leases: the overlay port is mapped, relayed ports are not.
  const permanent = world({ udp: () => [], http: (action, body) => (action === 'GetExternalIPAddress' ? { status: 200, body: `<NewExternalIPAddress>${EXTERNAL}</NewExternalIPAddress>` } : body.includes('<NewLeaseDuration>0<') ? { status: 200, body: '' } : { status: 500, body: '<errorCode>725</errorCode>' }) });
  const third = permanent.mapper(['upnp-igd']);
  (third as unknown as { igd: unknown }).igd = igd;
  const granted = third.map();
  await permanent.run(1000);
  assert.equal((await granted)?.lifetimeSeconds, 0);
  assert.equal(third.forPort(45000), undefined, 'an unclean stop would leave relayed forwards open for good');
});

test('a router that never grants a mapping is asked for ever, and the attempts the status shows stay the last 32 (leak review F3)', async () => {
  const { mapper, run } = world(pmpRouter({ up: true, epoch: () => 5, lifetime: 0 })); // it grants nothing that lasts
  const m = mapper(['nat-pmp']);
  for (let i = 0; i < 50; i++) {
    const tried = m.map();
    await run(1000);
    assert.equal(await tried, undefined);
  }
  assert.equal(m.tried.length, 32);
});
