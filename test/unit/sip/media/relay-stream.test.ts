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
  assert.deepEqual(stream.counters, { packetsIn: 3, packetsOut: 3, bytesIn: 516, bytesOut: 516, fromSide: { a: 1, b: 2 }, overlayIn: 0, overlayOut: 0, probesOut: 0, probesIn: 0, dropped: { stranger: 0, 'not-latched': 0, oversize: 0, 'no-target': 0, unsealed: 0, 'other-branch': 0 } });
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

test('one packet spoofed from the phone\'s address before the phone spoke does not hold the call: the SDP port takes the latch at once, another port after three in a row (review F6)', () => {
  const { stream, sent } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  const junk = { address: '192.168.1.20', port: 9 };
  stream.receive('a', rtp(), junk);
  assert.deepEqual(stream.latchedTo('a'), junk, 'it came first, from a vouched address');
  stream.receive('a', rtp(), phone);
  assert.deepEqual(stream.latchedTo('a'), phone, 'the port its SDP names');
  stream.receive('a', rtp(), junk);
  assert.equal(stream.counters.dropped['not-latched'], 1, 'one more spoofed packet moves nothing');
  // A phone behind a NAT (its source is not its SDP port), beaten by the spoofer's first packet.
  const natted = { address: '192.168.1.20', port: 61000 };
  const second = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  second.stream.receive('a', rtp(), junk);
  second.stream.receive('a', rtp(), natted);
  second.stream.receive('a', rtp(), natted);
  assert.deepEqual(second.stream.latchedTo('a'), junk);
  second.stream.receive('a', rtp(), natted);
  assert.deepEqual(second.stream.latchedTo('a'), natted, 'the third in a row moves it');
  second.stream.receive('b', rtp(), far);
  assert.deepEqual(second.sent.at(-1)?.to, natted, 'the far audio goes to the phone');
  assert.equal(sent.filter((s) => s.side === 'b').length, 2, 'only the latched source was relayed');
});

test('a party on hold (c=0.0.0.0) or a refused stream gets nothing; an oversize datagram is not media', () => {
  const { stream, sent } = harness({ a: phone, b: { address: '0.0.0.0', port: 40000 } }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.receive('a', rtp(), phone);
  stream.receive('a', rtp(1501), phone);
  assert.equal(sent.length, 0);
  assert.deepEqual(stream.counters.dropped, { stranger: 0, 'not-latched': 0, oversize: 1, 'no-target': 1, unsealed: 0, 'other-branch': 0 });
  // IPv6's unspecified address likewise: a datagram sent to :: would reach this very host.
  const v6 = harness({ a: phone, b: { address: '::', port: 40000 } }, { a: ['192.168.1.20'], b: ['2001:db8::9'] });
  v6.stream.receive('a', rtp(), phone);
  assert.equal(v6.sent.length, 0);
  assert.equal(v6.stream.counters.dropped['no-target'], 1);
});

test('the internet leg sealed: what goes there is sealed, what comes opens or is dropped, and authentic media re-latches (a new path)', () => {
  const { stream, sent } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  const box = (bytes: Uint8Array, flags = 0) => new Uint8Array([0xee, flags, ...bytes]);
  stream.seal('b', { seal: box, open: (d) => (d[0] === 0xee ? { packet: d.subarray(2), flags: d[1], newest: true } : undefined) });
  stream.receive('a', rtp(10), phone);
  assert.deepEqual(sent.at(-1), { side: 'b', to: far, bytes: 12 }, 'sealed towards the other home');
  stream.receive('b', rtp(10), far);
  assert.equal(stream.counters.dropped.unsealed, 1, 'plain RTP from the internet is not media of this call');
  // The other home's packets now come from a relay: they open, so the stream follows them.
  const relay = { address: '198.51.100.50', port: 50000 };
  stream.receive('b', box(rtp(10)), relay);
  assert.deepEqual(sent.at(-1), { side: 'a', to: phone, bytes: 10 });
  assert.deepEqual(stream.latchedTo('b'), relay);
  stream.receive('a', rtp(10), phone);
  assert.deepEqual(sent.at(-1)?.to, relay);
});

test('a re-offer with a new address unlatches the side; the same address keeps it', () => {
  const { stream, sent } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.receive('a', rtp(), { ...phone, port: 10002 });
  stream.setParty('a', phone, ['192.168.1.20']);
  assert.deepEqual(stream.latchedTo('a'), { ...phone, port: 10002 });
  const moved = { address: '192.168.1.21', port: 12000 };
  stream.setParty('a', moved, ['192.168.1.21']);
  assert.equal(stream.latchedTo('a'), undefined);
  stream.receive('b', rtp(), far);
  assert.deepEqual(sent.at(-1)?.to, moved);
});

/**
 * A stand-in for the call key's AEAD: a marker byte that only "the other home" puts on, and the
 * flags byte it covers. The marker 0xab stands for a datagram that opens late (not the newest).
 */
const fakeSealing = {
  seal: (packet: Uint8Array, flags = 0) => new Uint8Array([0xaa, flags, ...packet]),
  open: (datagram: Uint8Array) => (datagram[0] === 0xaa || datagram[0] === 0xab ? { packet: datagram.subarray(2), flags: datagram[1], newest: datagram[0] === 0xaa } : undefined),
};
/** The same datagram, let go late (held back on the way, or caught and sent on by someone else). */
const late = (sealed: Uint8Array) => new Uint8Array([0xab, ...sealed.subarray(1)]);
/** A backhaul that records what it is sent, reaching the far home directly at `host` (or through a relay: undefined). */
function backhaulTo(host?: string) {
  const sent: { bytes: number; heardYou: boolean; directLost: boolean }[] = [];
  return { sent, send: (sealed: Uint8Array, _to: Endpoint, directLost: boolean) => sent.push({ bytes: sealed.length, heardYou: heardYou(sealed), directLost }), directHost: () => host };
}
/** The flags (relay-stream.ts): the sender hears us straight at our media port; it sent this over the overlay link. */
const HEARD = 0x01;
const OVER_OVERLAY = 0x02;
/** What the sealed datagram's flags say: its sender hears us straight at our media port. */
const heardYou = (sealed: Uint8Array) => (sealed[1] & 1) === 1;

test('the internet leg goes over the overlay until the far home is heard directly, with sealed empty probes on the direct path meanwhile', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  const backhaul = backhaulTo(far.address);
  const overlay = backhaul.sent;
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaul);
  // The phone talks; nothing came from the far home directly yet.
  for (let i = 0; i < 60; i++) stream.receive('a', rtp(), phone);
  assert.equal(overlay.length, 60, 'every packet over the overlay');
  assert.ok(overlay.every((o) => o.bytes === 174 && !o.heardYou));
  const probes = sent.filter((s) => s.side === 'b');
  assert.equal(probes.length, 51, '50 eager probes, then one in 25');
  assert.ok(probes.every((p) => p.bytes === 2), 'a probe is sealed and empty, never a copy of the media');
  // A probe from the far home arrives straight at our port: the path works; nothing reaches the phone.
  const toPhoneBefore = sent.filter((s) => s.side === 'a').length;
  stream.receive('b', fakeSealing.seal(new Uint8Array(0)), { address: '203.0.113.9', port: 41000 });
  assert.equal(sent.filter((s) => s.side === 'a').length, toPhoneBefore, 'a probe is not forwarded');
  assert.equal(stream.counters.probesIn, 1);
  assert.equal(stream.heardDirectly('b'), true);
  // The far home still says (over the overlay) that it has not heard us: we keep the overlay, and probe.
  stream.receiveOverOverlay('b', fakeSealing.seal(rtp(), OVER_OVERLAY));
  assert.equal(stream.overOverlay('b'), true);
  // It hears us now; a second later, media goes straight to where it was heard, and only there.
  stream.receiveOverOverlay('b', fakeSealing.seal(rtp(), OVER_OVERLAY | HEARD));
  tick(1001);
  const overlayBefore = overlay.length;
  stream.receive('a', rtp(), phone);
  assert.equal(overlay.length, overlayBefore, 'no longer over the overlay');
  assert.deepEqual(sent.at(-1), { side: 'b', to: { address: '203.0.113.9', port: 41000 }, bytes: 174 });
  // A forged frame over the overlay opens nowhere and changes nothing.
  stream.receiveOverOverlay('b', rtp());
  assert.equal(stream.counters.dropped.unsealed, 1);
  assert.equal(stream.overOverlay('b'), false);
  // Nothing plain travels the overlay either.
  assert.equal(stream.counters.overlayIn, 2);
});

test('a direct path that goes quiet (the far home renumbered) moves the media to the overlay in 1.5 s, and back once the far home is heard directly again', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  const backhaul = backhaulTo(far.address);
  const overlay = backhaul.sent;
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaul);
  // A call whose direct path works: both ways, 20 ms apart.
  for (let i = 0; i < 50; i++) {
    stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
    stream.receive('a', rtp(), phone);
    tick(20);
  }
  assert.equal(overlay.length, 0, 'straight to the far home while it is heard there');
  // Nothing comes straight from the far home any more; our phone keeps talking.
  const at = sent.length;
  for (let i = 0; i < 100; i++) {
    stream.receive('a', rtp(), phone);
    tick(20);
  }
  const direct = sent.slice(at).filter((s) => s.side === 'b' && s.bytes === 174).length;
  assert.equal(direct, 74, 'direct for 1.5 s after the last packet heard (20 ms before the first of these)');
  assert.equal(overlay.length, 26, 'then over the overlay');
  assert.ok(overlay.every((o) => !o.heardYou), 'telling the far home we do not hear it directly');
  assert.deepEqual(overlay.map((o) => o.directLost).indexOf(true), 0, 'the first packet that leaves the direct path says it was lost (a sign our own address may have changed)');
  assert.equal(overlay.filter((o) => o.directLost).length, 1, 'and only the first');
  assert.ok(sent.slice(at).some((s) => s.side === 'b' && s.bytes === 2), 'with direct probes meanwhile');
  // The far home is heard directly again (at a new address, sealed): media goes straight there.
  const moved = { address: '198.51.100.7', port: 41000 };
  for (let i = 0; i < 3; i++) stream.receive('b', fakeSealing.seal(rtp(), HEARD), moved); // three in a row move the latch
  stream.receive('a', rtp(), phone);
  assert.deepEqual(sent.at(-1), { side: 'b', to: moved, bytes: 174 });
  assert.equal(overlay.length, 26);
  // Lost again later: said again, once.
  tick(1600);
  for (let i = 0; i < 5; i++) stream.receive('a', rtp(), phone);
  assert.deepEqual(overlay.slice(26).map((o) => o.directLost), [true, false, false, false, false]);
});

test('keepDirect (the anchor calls it every 500 ms): a side to which nothing went straight since the last tick gets a sealed empty probe, where it is heard or, not yet heard, where its SDP says; one sent media gets none', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaulTo(far.address));
  stream.keepDirect('b');
  assert.deepEqual(sent.map((s) => s.to), [far], 'never heard, our phone silent: a probe to its SDP address still opens our NAT to the far home');
  sent.length = 0;
  // The far home talks to us straight; our phone is on hold and sends nothing.
  for (let i = 0; i < 100; i++) {
    stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
    tick(20);
    if (i % 25 === 24) stream.keepDirect('b');
  }
  const toFar = sent.filter((s) => s.side === 'b');
  assert.equal(toFar.length, 4, 'one probe in each 500 ms of the 2 s');
  assert.equal(stream.counters.probesOut, 5);
  assert.ok(toFar.every((s) => s.bytes === 2 && s.to.address === far.address && s.to.port === far.port), 'sealed, empty, to where the far home is heard');
  // Our phone talks again: the media itself keeps the path, no probe beside it.
  for (let i = 0; i < 50; i++) {
    stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
    stream.receive('a', rtp(), phone);
    tick(20);
    if (i % 25 === 24) stream.keepDirect('b');
  }
  assert.equal(stream.counters.probesOut, 5);
  // Media just after a tick, then none: the next tick probes (not the one after), so probes go
  // about 500 ms apart and one lost leaves the far side hearing us within its 1.5 s.
  stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
  stream.receive('a', rtp(), phone);
  tick(10);
  stream.keepDirect('b');
  assert.equal(stream.counters.probesOut, 5, 'just sent media: nothing');
  tick(490);
  stream.keepDirect('b');
  assert.equal(stream.counters.probesOut, 6, 'the next tick');
  // On hold (its SDP says 0.0.0.0) and never heard: nothing.
  const held = harness({ a: phone, b: { address: '0.0.0.0', port: 40000 } }, { a: ['192.168.1.20'], b: [] });
  held.stream.seal('b', fakeSealing);
  held.stream.setBackhaul('b', backhaulTo(far.address));
  held.stream.keepDirect('b');
  assert.equal(held.sent.length, 0);
});

test('while the far home does not hear us but we hear it, the overlay packets carry eager probes only at first, not one beside each', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaulTo(far.address));
  for (let i = 0; i < 200; i++) {
    stream.receive('b', fakeSealing.seal(rtp(), 0), far); // straight to us, saying it does not hear us
    stream.receive('a', rtp(), phone); // ours go over the overlay, with probes
    tick(20);
  }
  assert.equal(sent.filter((s) => s.side === 'b' && s.bytes === 2).length, 56, '50 eager, then one in 25');
});

test('each time the direct path goes quiet, its first overlay packets carry direct probes again', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaulTo(far.address));
  const quietSpell = () => {
    stream.receive('b', fakeSealing.seal(rtp()), far); // heard straight
    tick(1600); // then nothing for longer than the path is believed
    const at = sent.length;
    for (let i = 0; i < 60; i++) stream.receive('a', rtp(), phone); // over the overlay now
    return sent.slice(at).filter((s) => s.side === 'b' && s.bytes === 2).length;
  };
  assert.equal(quietSpell(), 51, 'the first time: 50 eager probes, then one in 25');
  assert.equal(quietSpell(), 51, 'and each time after (not one in 25 from the start)');
});

test('the far home renumbered: while it is not heard directly, probes also go to its media port at the host the overlay link reaches it at now, and only a direct link counts', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  const renumbered = '198.51.100.77';
  let linkHost: string | undefined = far.address;
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', { send: () => {}, directHost: () => linkHost });
  stream.receive('b', fakeSealing.seal(rtp()), far); // the direct path worked
  tick(1600); // then the far home's ISP renumbered it, and the overlay link was set up again there
  linkHost = renumbered;
  const at = sent.length;
  for (let i = 0; i < 10; i++) stream.receive('a', rtp(), phone);
  const probes = sent.slice(at).filter((s) => s.side === 'b' && s.bytes === 2);
  assert.equal(probes.filter((p) => p.to.address === far.address && p.to.port === far.port).length, 10, 'where it was heard, as before');
  assert.equal(probes.filter((p) => p.to.address === renumbered && p.to.port === far.port).length, 10, 'and its media port\'s number at its new address (a port-restricted NAT there lets nothing in before we sent)');
  // Its media comes straight from there now: latched; one probe target only.
  for (let i = 0; i < 3; i++) stream.receive('b', fakeSealing.seal(rtp()), { address: renumbered, port: far.port });
  tick(1600);
  const after = sent.length;
  stream.receive('a', rtp(), phone);
  assert.deepEqual(sent.slice(after).filter((s) => s.bytes === 2).map((s) => s.to), [{ address: renumbered, port: far.port }]);
  // A link through a relay says nothing of where the home is.
  linkHost = undefined;
  for (let i = 0; i < 3; i++) stream.receive('b', fakeSealing.seal(rtp()), far);
  tick(1600);
  const relayed = sent.length;
  stream.receive('a', rtp(), phone);
  assert.deepEqual(sent.slice(relayed).filter((s) => s.bytes === 2).map((s) => s.to), [far]);
});

test('a sealed datagram that opens late from elsewhere (a probe caught on the way and sent on) moves nothing; a late "not heard" keeps nobody on the overlay', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaulTo(far.address));
  stream.receive('b', fakeSealing.seal(rtp(), 1), far);
  const victim = { address: '192.0.2.66', port: 9 };
  stream.receive('b', late(fakeSealing.seal(new Uint8Array(0), 1)), victim);
  assert.deepEqual(stream.latchedTo('b'), far, 'still latched where the far home is');
  stream.receive('a', rtp(), phone);
  assert.deepEqual(sent.at(-1)?.to, far);
  // The far home hears us; a relay on the overlay link lets go of an old "not heard" frame now.
  tick(20);
  stream.receiveOverOverlay('b', late(fakeSealing.seal(rtp(), OVER_OVERLAY)));
  assert.equal(stream.overOverlay('b'), false, 'the media stays on the direct path');
  stream.receiveOverOverlay('b', fakeSealing.seal(rtp(), OVER_OVERLAY));
  assert.equal(stream.overOverlay('b'), true, 'the newest "not heard" is believed');
  // From where it is latched, a late one still counts as heard there (reordering on one path).
  tick(1600);
  assert.equal(stream.heardDirectly('b'), false);
  stream.receive('b', late(fakeSealing.seal(rtp(), 1)), far);
  assert.equal(stream.heardDirectly('b'), true);
});

test('the latch on the far side moves only with three newest datagrams in a row from the new address; what was sent over the overlay never counts at the media port, nor the other way round', () => {
  const { stream, sent, tick } = harness({ a: phone, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.seal('b', fakeSealing);
  stream.setBackhaul('b', backhaulTo(far.address));
  stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
  const victim = { address: '192.0.2.66', port: 9 };
  // A probe someone caught on the way (a NAT dropped it) and sent on at once: the newest, but alone.
  stream.receive('b', fakeSealing.seal(new Uint8Array(0), HEARD), victim);
  stream.receive('b', fakeSealing.seal(rtp(), HEARD), far);
  stream.receive('b', fakeSealing.seal(new Uint8Array(0), HEARD), victim);
  stream.receive('b', fakeSealing.seal(new Uint8Array(0), HEARD), victim);
  assert.deepEqual(stream.latchedTo('b'), far, 'never three in a row from there');
  // A relay peer carrying the overlay link sends its frames on to our media port from anywhere.
  const dropped = stream.counters.dropped.unsealed;
  for (let i = 0; i < 5; i++) stream.receive('b', fakeSealing.seal(rtp(), OVER_OVERLAY | HEARD), victim);
  assert.deepEqual(stream.latchedTo('b'), far, 'what went over the overlay does not latch at the media port');
  assert.equal(stream.counters.dropped.unsealed, dropped + 5);
  stream.receiveOverOverlay('b', fakeSealing.seal(rtp(), HEARD));
  assert.equal(stream.counters.dropped.unsealed, dropped + 6, 'nor does a direct datagram count over the overlay');
  stream.receive('a', rtp(), phone);
  assert.deepEqual(sent.at(-1)?.to, far);
  // The far home's NAT mapped it anew: its packets come from another port, and the latch follows.
  const rebound = { ...far, port: 41234 };
  for (let i = 0; i < 3; i++) stream.receive('b', fakeSealing.seal(rtp(), HEARD), rebound);
  assert.deepEqual(stream.latchedTo('b'), rebound);
  // A newest datagram straight from the far home that says it does not hear us puts us on the overlay too.
  tick(20);
  assert.equal(stream.overOverlay('b'), false);
  stream.receive('b', fakeSealing.seal(new Uint8Array(0), 0), rebound);
  assert.equal(stream.overOverlay('b'), true, 'the far home\'s word, by whichever path it came');
});

test('a forked call: the phone that answers after another played early media is heard, even on the same host', () => {
  const first = { address: '192.168.1.20', port: 10000 };
  const second = { address: '192.168.1.20', port: 20000 };
  const { stream, sent } = harness({ a: first, b: far }, { a: ['192.168.1.20'], b: ['203.0.113.9'] });
  stream.receive('a', rtp(), first); // early media from the first branch latches the phone side
  stream.setParty('a', second, ['192.168.1.20']); // the second phone answers (its 200 OK's SDP)
  stream.receive('a', rtp(), second);
  assert.deepEqual(sent.at(-1), { side: 'b', to: far, bytes: 172 }, 'the answering phone is heard');
  stream.receive('b', rtp(), far);
  assert.deepEqual(sent.at(-1)?.to, second, 'and reached');
  const dropped = stream.counters.dropped['not-latched'];
  stream.receive('a', rtp(), first);
  assert.equal(stream.counters.dropped['not-latched'], dropped + 1, 'the loser is not heard any more');
  // A re-offer with the same address and port (hold, resume) keeps the latch.
  stream.setParty('a', second, ['192.168.1.20']);
  stream.receive('a', rtp(), second);
  assert.equal(stream.counters.dropped['not-latched'], dropped + 1);
});
