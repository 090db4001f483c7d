import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../../../src/sim/virtual-clock.js';
import { MediaAnchor, type MediaSocket, type StreamPlan } from '../../../../src/usages/sip/media/media-anchor.js';
import { MediaPortPool, MediaPortsExhausted } from '../../../../src/usages/sip/media/port-pool.js';
import type { Endpoint } from '../../../../src/usages/sip/media/sdp.js';

/*
 * The anchor's sessions on virtual time with in-memory sockets: ports per side, audio relayed
 * through them, ports given back on close and after the media timeout, a full range refused
 * without holding anything, ports the system refuses skipped.
 */
function world(options: { low?: number; high?: number; busy?: number[]; ringingMs?: number } = {}) {
  const clock = new VirtualClock();
  const open = new Map<number, (bytes: Uint8Array, from: Endpoint) => void>();
  const sent: { port: number; to: Endpoint }[] = [];
  const factory = async (port: number, receive: (bytes: Uint8Array, from: Endpoint) => void): Promise<MediaSocket | undefined> => {
    if (open.has(port) || options.busy?.includes(port)) return undefined;
    open.set(port, receive);
    return { send: (_bytes, to) => sent.push({ port, to }), close: () => open.delete(port) };
  };
  const anchor = new MediaAnchor(new MediaPortPool(options.low ?? 40000, options.high ?? 40099), factory, clock, 60_000, options.ringingMs);
  const deliver = (port: number, from: Endpoint) => open.get(port)!(new Uint8Array(172), from);
  return { clock, anchor, open, sent, deliver };
}

const phone = { address: '192.168.1.20', port: 10000 };
const far = { address: '203.0.113.9', port: 40000 };
const plan: StreamPlan = {
  offered: { a: { rtp: phone, rtcp: { ...phone, port: 10001 } }, b: { rtp: far, rtcp: { ...far, port: 40001 } } },
  vouched: { a: ['192.168.1.20'], b: ['203.0.113.9'] },
};

test('a call anchored: an RTP/RTCP pair on each side, audio relayed across, ports back on close', async () => {
  const { anchor, open, sent, deliver } = world();
  const session = await anchor.open('call-1', [plan]);
  const [stream] = session.streams;
  assert.equal(open.size, 4, 'RTP and RTCP on each side');
  assert.notEqual(stream.ports.a, stream.ports.b);
  deliver(stream.ports.a, phone);
  assert.deepEqual(sent.at(-1), { port: stream.ports.b, to: far }, 'the phone\'s audio leaves from the far side\'s port');
  deliver(stream.ports.b + 1, { ...far, port: 40001 });
  assert.deepEqual(sent.at(-1), { port: stream.ports.a + 1, to: { ...phone, port: 10001 } }, 'RTCP on the ports above');
  assert.equal(anchor.totals().packetsOut, 2);
  assert.equal(anchor.portsInUse, 4);
  anchor.close('call-1');
  assert.equal(open.size, 0);
  assert.equal(anchor.portsInUse, 0);
  // Counters count since start: an ended call's packets stay counted.
  assert.deepEqual([anchor.totals().packetsOut, anchor.totals().fromSide.a, anchor.totals().fromSide.b], [2, 1, 1]);
});

test('an answered session with no packet for the media timeout ends by itself; one that carries audio does not', async () => {
  const { clock, anchor, open, deliver } = world();
  const quiet = await anchor.open('quiet', [plan]);
  const talking = await anchor.open('talking', [plan]);
  anchor.answered('quiet');
  anchor.answered('talking');
  for (let t = 0; t < 7; t++) {
    clock.runUntil(clock.now() + 20_000);
    deliver(talking.streams[0].ports.a, phone);
  }
  assert.equal(anchor.active, 1);
  assert.equal(anchor.counters.timeouts, 1);
  assert.ok(!open.has(quiet.streams[0].ports.a), 'the quiet session\'s ports are closed');
});

test('a call may ring without media longer than the media timeout; answered, the timeout runs from the answer, to the second', async () => {
  const { clock, anchor } = world();
  await anchor.open('ringing', [plan]);
  clock.runUntil(clock.now() + 170_000); // rings nearly three minutes (Timer C's limit)
  assert.equal(anchor.active, 1, 'still ringing, still anchored');
  anchor.answered('ringing');
  clock.runUntil(clock.now() + 59_000);
  assert.equal(anchor.active, 1);
  clock.runUntil(clock.now() + 1_000);
  assert.equal(anchor.active, 0, 'ended 60 s after the answer with no packet, not up to 120 s');
});

test('a session nobody ever answers is given up after five minutes', async () => {
  const { clock, anchor } = world();
  await anchor.open('lost', [plan]);
  clock.runUntil(clock.now() + 299_000);
  assert.equal(anchor.active, 1);
  clock.runUntil(clock.now() + 61_000);
  assert.equal(anchor.active, 0);
  assert.equal(anchor.counters.timeouts, 1);
});

test('a call still ringing with early media flowing is not given up at five minutes; five quiet minutes end it', async () => {
  const { clock, anchor, deliver } = world();
  const session = await anchor.open('early', [plan]);
  for (let t = 0; t < 8; t++) {
    clock.runUntil(clock.now() + 50_000);
    deliver(session.streams[0].ports.b, far); // the far side's ringback
  }
  assert.equal(anchor.active, 1, 'six and a half minutes of early media');
  clock.runUntil(clock.now() + 299_000);
  assert.equal(anchor.active, 1);
  clock.runUntil(clock.now() + 61_000);
  assert.equal(anchor.active, 0);
});

test('a proxy whose Timer C is ten minutes (--sip-timer-c 600) lets a call ring that long without media (review M13)', async () => {
  const { clock, anchor } = world({ ringingMs: 632_000 });
  await anchor.open('long-ring', [plan]);
  clock.runUntil(clock.now() + 600_000);
  assert.equal(anchor.active, 1);
  clock.runUntil(clock.now() + 60_000);
  assert.equal(anchor.active, 0);
});

test('when the range runs out the call is refused (503) holding no port; ports the system refuses are skipped', async () => {
  const { anchor, open } = world({ low: 40000, high: 40007, busy: [40001] });
  const first = await anchor.open('one', [plan]); // 40000 is passed over: its RTCP port is taken elsewhere
  assert.deepEqual(first.streams[0].ports, { a: 40002, b: 40004 });
  await assert.rejects(anchor.open('two', [plan]), MediaPortsExhausted);
  assert.equal(anchor.counters.refusedNoPorts, 1);
  assert.equal(open.size, 4, 'the refused call holds nothing');
});

test('a call forked to two phones: each branch has ports of its own, the one that answered last is heard, and the winner keeps its ports while the rest go back', async () => {
  const { anchor, open, sent, deliver } = world();
  const session = await anchor.open('call-1', [plan]);
  const [stream] = session.streams;
  const first = stream.ports.a;
  const [second] = (await anchor.openBranch('call-1', '1', 'a'))!;
  assert.ok(second !== undefined && second !== first && second !== stream.ports.b);
  assert.equal(anchor.portsInUse, 6, 'a pair more for the second branch');
  const phone2 = { address: '192.168.1.21', port: 12000 };

  // The second phone answers with early media: it is heard at its own port, the first one is not.
  anchor.useBranch('call-1', '1');
  stream.rtp.setParty('a', phone2, [phone2.address]);
  deliver(second, phone2);
  assert.deepEqual(sent.at(-1), { port: stream.ports.b, to: far }, 'the second phone\'s early media goes to the far side');
  deliver(stream.ports.b, far);
  assert.deepEqual(sent.at(-1), { port: second, to: phone2 }, 'and the far side reaches it from its own port');
  const before = sent.length;
  deliver(first, phone);
  assert.equal(sent.length, before, 'the first phone\'s packets go nowhere meanwhile');
  assert.equal(stream.rtp.counters.dropped['other-branch'], 1);

  // The first phone answers 200: the second branch's ports go back, and the first is heard again.
  anchor.keepBranch('call-1', 'main');
  assert.equal(anchor.portsInUse, 4);
  assert.equal(open.has(second), false);
  stream.rtp.setParty('a', phone, [phone.address]);
  deliver(first, phone);
  assert.deepEqual(sent.at(-1), { port: stream.ports.b, to: far });
  anchor.close('call-1');
  assert.equal(open.size, 0);
  assert.equal(anchor.portsInUse, 0);
});

test('when the branch that answers has ports of its own, they become the call\'s, and the first branch\'s go back', async () => {
  const { anchor, open, sent, deliver } = world();
  const session = await anchor.open('call-1', [plan]);
  const [stream] = session.streams;
  const first = stream.ports.a;
  const [second] = (await anchor.openBranch('call-1', '1', 'a'))!;
  const [third] = (await anchor.openBranch('call-1', '2', 'a'))!;
  assert.equal(anchor.portsInUse, 8);
  anchor.keepBranch('call-1', '1');
  assert.equal(stream.ports.a, second, 'a re-offer to the phone names the winner\'s ports');
  assert.equal(anchor.portsInUse, 4, 'the first and third branches\' pairs are free');
  assert.deepEqual([open.has(first), open.has(third!), open.has(second!)], [false, false, true]);
  const phone2 = { address: '192.168.1.21', port: 12000 };
  stream.rtp.setParty('a', phone2, [phone2.address]);
  deliver(second!, phone2);
  assert.deepEqual(sent.at(-1), { port: stream.ports.b, to: far });
  anchor.close('call-1');
  assert.equal(open.size, 0);
  assert.equal(anchor.portsInUse, 0);
});

test('a branch that gives up frees its ports at once; branches beyond four more, or past three quarters of the range, share the first one\'s', async () => {
  const { anchor } = world();
  await anchor.open('call-1', [plan]);
  for (let i = 1; i <= 4; i++) assert.ok(await anchor.openBranch('call-1', String(i), 'a'));
  assert.equal(await anchor.openBranch('call-1', '5', 'a'), undefined, 'the fifth shares');
  assert.equal(anchor.portsInUse, 4 + 4 * 2);
  anchor.closeBranch('call-1', '3');
  assert.equal(anchor.portsInUse, 4 + 3 * 2);
  assert.equal(await anchor.openBranch('call-2', '1', 'a'), undefined, 'no such call');
  anchor.close('call-1');
  assert.equal(anchor.portsInUse, 0);
  assert.equal(anchor.counters.branchLegs, 4);

  // A range of 8 pairs: a call takes 2, and a branch may not leave fewer than 2 free.
  const small = world({ low: 40000, high: 40015 }).anchor;
  for (const id of ['x', 'y']) await small.open(id, [plan]);
  assert.ok(await small.openBranch('x', '1', 'a'), '5 of 8 pairs in use after it');
  assert.ok(await small.openBranch('y', '1', 'a'), '6 of 8: 2 still free');
  assert.equal(await small.openBranch('x', '2', 'a'), undefined, 'one more would leave 1 free');
  assert.equal(small.counters.branchesSharing, 1);
});

test('two offers for one branch at once (a merged or repeated INVITE) open its ports once; the loser\'s go straight back', async () => {
  const { anchor, open } = world();
  await anchor.open('call-1', [plan]);
  const [first, second] = await Promise.all([anchor.openBranch('call-1', '1', 'a'), anchor.openBranch('call-1', '1', 'a')]);
  assert.equal([first, second].filter(Boolean).length, 1, 'one of them has ports of its own');
  assert.equal(anchor.portsInUse, 6);
  anchor.close('call-1');
  assert.equal(anchor.portsInUse, 0);
  assert.equal(open.size, 0, 'every socket closed');
});

test('an offer to the phones while a forked call rings names the ports of the phone heard now', async () => {
  const { anchor } = world();
  const session = await anchor.open('call-1', [plan]);
  const [own] = (await anchor.openBranch('call-1', '1', 'a'))!;
  assert.deepEqual(anchor.portsHeard('call-1', 'a'), [session.streams[0].ports.a]);
  anchor.useBranch('call-1', '1');
  assert.deepEqual(anchor.portsHeard('call-1', 'a'), [own]);
  assert.deepEqual(anchor.portsHeard('call-1', 'b'), [session.streams[0].ports.b], 'the other side is not forked');
  anchor.close('call-1');
});

test('when the phone heard gives up, the one that sent SDP before it is heard again, down to the first', async () => {
  const { anchor, open, sent, deliver } = world();
  const session = await anchor.open('call-1', [plan]);
  const [stream] = session.streams;
  const phones = [phone, { address: '192.168.1.21', port: 12000 }, { address: '192.168.1.22', port: 14000 }];
  const ports = [stream.ports.a, (await anchor.openBranch('call-1', '1', 'a'))![0]!, (await anchor.openBranch('call-1', '2', 'a'))![0]!];
  const answers = (i: number) => {
    anchor.useBranch('call-1', String(i));
    stream.rtp.setParty('a', phones[i], [phones[i].address]);
  };
  const heard = () => [0, 1, 2].filter((i) => {
    if (!open.has(ports[i])) return false; // its ports are gone
    const before = sent.length;
    deliver(ports[i], phones[i]);
    return sent.length > before;
  });
  answers(0);
  answers(1);
  answers(2);
  assert.deepEqual(heard(), [2]);
  anchor.closeBranch('call-1', '2');
  assert.deepEqual(heard(), [1], 'the second, which sent SDP before the third');
  anchor.closeBranch('call-1', '1');
  assert.deepEqual(heard(), [0], 'then the first');
  anchor.close('call-1');
});
