import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NatTraversal } from '../../../src/nat/nat-traversal.js';
import { candidate } from '../../../src/nat/ice/candidates.js';
import type { IceResult } from '../../../src/nat/ice/ice-session.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { type Address, addressKey } from '../../../src/wire/address.js';
import { CandidateType } from '../../../src/wire/messages/attach.js';
import { seal, shortTermKey } from '../../../src/nat/stun/integrity.js';
import { natNode } from '../../helpers/nat-node.js';
import { Attr, decodeStun, encodeStun, StunClass, StunMethod } from '../../../src/nat/stun/message.js';

/*
 * ICE-style checks between two nodes on virtual time, with a network that drops what a NAT
 * would: both sides check every candidate of the other, answers must come from where the check
 * went and carry the right MESSAGE-INTEGRITY, and the controlling side's nomination is what both
 * end up using.
 */
interface Side {
  readonly nat: NatTraversal;
  readonly host: Address;
}

function pair(deliverable: (from: Address, to: Address) => boolean, rewrite: (from: Address) => Address = (a) => a, onPath?: (from: Address, datagram: Uint8Array, answer: (from: Address, datagram: Uint8Array) => void) => void) {
  const clock = new VirtualClock();
  const random = new SeededRandom(7);
  const sides = new Map<string, Side>();
  const make = (host: Address): Side => {
    const nat = natNode(host, clock, random.fork(), (to, datagram) => {
      const source = rewrite(host);
      onPath?.(source, datagram, (from, forged) => clock.setTimer(1, () => sides.get(addressKey(host))!.nat.receive('host', from, forged)));
      if (!deliverable(source, to)) return;
      const target = [...sides.values()].find((s) => addressKey(s.host) === addressKey(to) || addressKey(rewrite(s.host)) === addressKey(to));
      if (target) clock.setTimer(5, () => target.nat.receive('host', source, datagram));
    });
    const side = { nat, host };
    sides.set(addressKey(host), side);
    return side;
  };
  return { clock, make };
}

function run(a: Side, b: Side, clock: VirtualClock, bCandidates = [candidate(CandidateType.Host, b.host)], aCandidates = [candidate(CandidateType.Host, a.host)]) {
  const controlling = a.nat.ice.createSession()!;
  const controlled = b.nat.ice.createSession()!;
  const results: { a?: IceResult; b?: IceResult; aDone: boolean; bDone: boolean } = { aDone: false, bDone: false };
  controlled.start('controlled', controlling.local, bCandidates[0].priority, aCandidates);
  controlling.start('controlling', controlled.local, aCandidates[0].priority, bCandidates);
  controlling.onDone((r) => Object.assign(results, { a: r, aDone: true }));
  controlled.onDone((r) => Object.assign(results, { b: r, bDone: true }));
  clock.runUntil(clock.now() + 15_000);
  return results;
}

test('two reachable nodes check, the requester nominates, and both use the same pair', () => {
  const { clock, make } = pair(() => true);
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock);
  assert.equal(addressKey(r.a!.remote), '198.18.0.2:6084');
  assert.equal(addressKey(r.b!.remote), '198.18.0.1:6084');
  assert.equal(r.a!.remoteType, 'host');
  assert.ok(r.a!.setupMs < 500, `${r.a!.setupMs} ms`);
});

test('an unreachable candidate is skipped: the pair through the other one wins', () => {
  const { clock, make } = pair((_, to) => to.host !== '198.19.1.2');
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock, [candidate(CandidateType.Host, { host: '198.19.1.2', port: 6084 }), candidate(CandidateType.ServerReflexive, b.host)]);
  assert.equal(addressKey(r.a!.remote), '198.18.0.2:6084');
  assert.equal(r.a!.remoteType, 'srflx');
  assert.equal(addressKey(r.b!.remote), '198.18.0.1:6084');
});

test('a check from an address that was no candidate is peer-reflexive and gets a triggered check back', () => {
  // A's NAT puts another port on what A sends (an endpoint-dependent mapping).
  const { clock, make } = pair(() => true, (from) => (from.host === '198.19.9.2' ? { host: '198.18.0.9', port: 40000 } : from));
  const a = make({ host: '198.19.9.2', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock);
  assert.equal(r.b!.remoteType, 'prflx');
  assert.equal(addressKey(r.b!.remote), '198.18.0.9:40000');
});

test('when no check gets through, both sides fail, bounded in time', () => {
  const { clock, make } = pair(() => false);
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock);
  assert.ok(r.aDone && r.bDone);
  assert.equal(r.a, undefined);
  assert.equal(r.b, undefined);
  assert.equal(clock.pendingTimers() < 10, true, 'no timers left running');
});

test('checks with the wrong password are refused and never complete a session', () => {
  const { clock, make } = pair(() => true);
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const controlling = a.nat.ice.createSession()!;
  const controlled = b.nat.ice.createSession()!;
  let done: IceResult | undefined | 'pending' = 'pending';
  controlled.start('controlled', controlling.local, 1, [candidate(CandidateType.Host, a.host)]);
  controlling.start('controlling', { ufrag: controlled.local.ufrag, pwd: 'not-the-password' }, 1, [candidate(CandidateType.Host, b.host)]);
  controlling.onDone((r) => (done = r));
  clock.runUntil(clock.now() + 15_000);
  assert.equal(done, undefined);
  assert.ok(b.nat.ice.counters.checksForged > 0);
});

test('an Attach whose candidates name loopback, another LAN, multicast or port 0 sends nothing there; at most 8 candidates are checked', () => {
  const sent: Address[] = [];
  const clock = new VirtualClock();
  const nat = natNode({ host: '198.18.0.1', port: 6084 }, clock, new SeededRandom(9), (to) => sent.push(to));
  const hostile = ['127.0.0.1', '10.0.0.1', '192.168.1.1', '169.254.0.1', '224.0.0.251', '255.255.255.255', '0.0.0.0'].map((host) => candidate(CandidateType.Host, { host, port: 5351 }));
  const global = Array.from({ length: 12 }, (_, i) => candidate(CandidateType.Host, { host: `198.18.7.${i + 1}`, port: 6084 }));
  const session = nat.ice.createSession()!;
  session.start('controlled', { ufrag: 'abcd', pwd: 'p'.repeat(24) }, global[0].priority, [...hostile, candidate(CandidateType.Host, { host: '198.18.0.9', port: 0 }), ...global]);
  clock.runUntil(clock.now() + 15_000);
  assert.ok(sent.length > 0);
  assert.deepEqual([...new Set(sent.map((a) => a.host))].sort(), global.slice(0, 8).map((c) => c.address.host).sort(), 'only the first 8 global candidates were checked');
});

test('peer-reflexive pairs stop at 100 (RFC 8445\'s check list limit): 5,000 authentic checks from new addresses get checks back to 100 of them only', () => {
  const clock = new VirtualClock();
  const checkedBack = new Set<string>();
  const nat = natNode({ host: '198.18.0.2', port: 6084 }, clock, new SeededRandom(11), (to, datagram) => {
    const message = decodeStun(datagram);
    if (message.klass === StunClass.Request && to.host.startsWith('198.19.')) checkedBack.add(addressKey(to));
  });
  const session = nat.ice.createSession()!;
  const peer = { ufrag: 'peer', pwd: 'q'.repeat(24) };
  session.start('controlled', peer, 1, []);
  const random = new SeededRandom(12);
  // Checks with the right password (a peer that knows it), each from a new address.
  for (let i = 0; i < 5000; i++) {
    const priority = new Uint8Array([0x6e, 0, 0, 0]);
    const check = seal(encodeStun(StunMethod.Binding, StunClass.Request, random.bytes(12), [
      { type: Attr.Username, value: new TextEncoder().encode(`${session.local.ufrag}:${peer.ufrag}`) },
      { type: Attr.Priority, value: priority },
      { type: Attr.IceControlling, value: random.bytes(8) },
    ]), shortTermKey(session.local.pwd));
    nat.receive('host', { host: `198.19.${i >> 8}.${i & 0xff}`, port: 7000 }, check);
  }
  clock.runUntil(clock.now() + 20_000);
  assert.equal(checkedBack.size, 100, 'triggered checks went to the first 100 new addresses only');
});

test('once a session ends, none of its checks is sent again', () => {
  const sent: Address[] = [];
  const clock = new VirtualClock();
  const nat = natNode({ host: '198.18.0.1', port: 6084 }, clock, new SeededRandom(13), (to) => sent.push(to));
  const session = nat.ice.createSession()!;
  // Nobody answers these: each check would be retransmitted for seconds.
  session.start('controlling', { ufrag: 'abcd', pwd: 'p'.repeat(24) }, 1, Array.from({ length: 4 }, (_, i) => candidate(CandidateType.Host, { host: `198.18.9.${i + 1}`, port: 6084 })));
  clock.runUntil(clock.now() + 200);
  session.close();
  const atClose = sent.length;
  clock.runUntil(clock.now() + 30_000);
  assert.equal(sent.length, atClose);
  assert.equal(nat.transactions.size, 0, 'no transaction left pending');
});

test('an on-path stranger who answers every check first, from its own address, neither fails a pair nor becomes one', () => {
  const stranger = { host: '198.18.0.66', port: 6084 };
  let forged = 0;
  const { clock, make } = pair(() => true, undefined, (_from, datagram, answer) => {
    const message = decodeStun(datagram);
    if (message.klass !== StunClass.Request) return;
    forged++;
    answer(stranger, encodeStun(StunMethod.Binding, StunClass.Success, message.transactionId, []));
  });
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock);
  assert.ok(forged >= 2);
  assert.equal(addressKey(r.a!.remote), '198.18.0.2:6084');
  assert.equal(addressKey(r.b!.remote), '198.18.0.1:6084');
  assert.ok(a.nat.transactions.strayAnswers >= 1, 'the forged answers were dropped and counted');
});

test('an answer forged from the checked address itself, without the right MESSAGE-INTEGRITY, neither fails a pair nor ends its check (RFC 8489 s9.1.4)', () => {
  let forged = 0;
  // An attacker who sees each check and spoofs the checked peer's address: an error answer at once,
  // and a success answer sealed under a guessed password.
  const { clock, make } = pair(() => true, undefined, (_from, datagram, answer) => {
    const message = decodeStun(datagram);
    if (message.klass !== StunClass.Request) return;
    forged++;
    const checked = { host: '198.18.0.2', port: 6084 };
    answer(checked, seal(encodeStun(StunMethod.Binding, StunClass.Error, message.transactionId, [{ type: Attr.ErrorCode, value: new Uint8Array([0, 0, 4, 0]) }])));
    answer(checked, seal(encodeStun(StunMethod.Binding, StunClass.Success, message.transactionId, []), shortTermKey('guessed'.repeat(4))));
  });
  const a = make({ host: '198.18.0.1', port: 6084 });
  const b = make({ host: '198.18.0.2', port: 6084 });
  const r = run(a, b, clock);
  assert.ok(forged >= 2);
  assert.equal(addressKey(r.a!.remote), '198.18.0.2:6084', 'the pair the forger tried to fail was checked and nominated');
  assert.equal(addressKey(r.b!.remote), '198.18.0.1:6084');
  assert.ok(a.nat.transactions.forgedAnswers >= 2, 'the forged answers were dropped and counted');
  assert.equal((a.nat.status().stunClient as { forgedAnswers: number }).forgedAnswers, a.nat.transactions.forgedAnswers);
});
