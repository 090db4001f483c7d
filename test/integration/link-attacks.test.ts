import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Attr, encodeStun, StunClass, StunMethod } from '../../src/nat/stun/message.js';
import type { Address } from '../../src/wire/address.js';
import { encodeFrame, FrameType } from '../../src/wire/frame.js';
import { decodeSecurityFrame, encodeSecurityFrame, type LinkHello, type SealedFrame, type SecurityFrame } from '../../src/wire/link-security.js';
import { bareSocket, openModeNode, pause } from '../helpers/link-intruder.js';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';

/*
 * Attacks on the sealed link of a real peer process over loopback (issue 13), each of which
 * worked against the handshake as it was: one datagram that ended the process, a relayed hello
 * that made a stranger pass as an enrolled node at a relay, a replayed hello that silenced a link,
 * unauthenticated datagrams answered with more bytes than they carried, and a flood of junk
 * hellos that kept honest links from forming. The intruders are the test's own open-mode node
 * (anyone may be one in open mode) and plain UDP sockets with no certificate at all.
 */
const OVERLAY = 'attack.lab';
const { root, running } = processLab('p2psip-link-attacks-');
let port = 0;
let target: Address;
let peer: ReturnType<typeof startProcess>;
const status = () => JSON.parse(runCli(['status', '--data', `${root}/a`, '--json']).stdout);
const keepalive = (sender: bigint, seq: number) => encodeFrame({ type: FrameType.Keepalive, seq, sender });
/** What the intruder's sealed link sent the peer (the crafted frames the tests add are skipped). */
const frames = (wire: { to: Address; bytes: Uint8Array }[]): SecurityFrame[] =>
  wire.filter((w) => w.to.port === port).flatMap((w) => {
    try {
      return [decodeSecurityFrame(w.bytes)];
    } catch {
      return [];
    }
  });
let intruder: Awaited<ReturnType<typeof openModeNode>>;
let capturedAt = 0;

test('setup: a peer on loopback, and an open-mode node of the test\'s own with a live sealed session to it', async () => {
  port = await freeUdpPort();
  target = { host: '127.0.0.1', port };
  peer = startProcess(['start', '--data', `${root}/a`, '--open', '--overlay', OVERLAY, '--bind', '127.0.0.1', '--overlay-port', String(port)]);
  running.push(peer);
  assert.ok(await eventually(() => status().state === 'joined', 15_000), peer.output.join(''));
  intruder = await openModeNode(OVERLAY, 1);
  intruder.link.send(target, keepalive(intruder.identity.nodeId, 1));
  assert.ok(await eventually(() => intruder.acks.includes(1), 5_000, 50), 'the peer acknowledged over the sealed link');
  capturedAt = Date.now();
});

test('one sealed frame with a counter of 2^48 (a live session id, the session\'s own address) does not stop the peer', async () => {
  const session = frames(intruder.wire).find((f): f is SealedFrame => f.type === FrameType.Sealed)!.session;
  for (const counter of [2 ** 48, 2 ** 53 - 1, 2 ** 48 - 1]) intruder.raw.send(target, encodeSecurityFrame({ type: FrameType.Sealed, session, counter, ciphertext: new Uint8Array(16) }));
  await pause(500);
  assert.equal(peer.child.exitCode, null, `the peer is still running: ${peer.output.join('').slice(-2000)}`);
  const link = status().linkSecurity;
  assert.ok(link.malformed >= 2, `refused at decode: ${JSON.stringify(link)}`);
  assert.equal(link.faults, 0);
  intruder.link.send(target, keepalive(intruder.identity.nodeId, 2));
  assert.ok(await eventually(() => intruder.acks.includes(2), 5_000, 50), 'and the session still carries traffic');
});

test('a hello relayed from a stranger\'s address never makes the relay peer serve the stranger as an enrolled node', async () => {
  const allocate = () => encodeStun(StunMethod.Allocate, StunClass.Request, new Uint8Array(12).map((_, i) => i + 1), [{ type: Attr.RequestedTransport, value: new Uint8Array([17, 0, 0, 0]) }]);
  // An enrolled node (the intruder's) starts a handshake toward the stranger's address, so the stranger
  // holds a fresh hello signed by that node, which the peer has never seen; it hands it on unchanged.
  const stranger = await bareSocket();
  try {
    intruder.link.send({ host: '127.0.0.1', port: stranger.port }, keepalive(intruder.identity.nodeId, 50));
    assert.ok(await eventually(() => stranger.received.length > 0, 3_000, 50));
    const hello = decodeSecurityFrame(stranger.received[0]) as LinkHello;
    assert.equal(hello.type, FrameType.LinkHello);
    stranger.received.length = 0;
    stranger.send(encodeSecurityFrame(hello), port);
    await pause(300);
    // If the peer asks for its cookie back, the stranger echoes it (it can: it receives at its address).
    const cookie = stranger.received.map((b) => decodeSecurityFrame(b)).find((f) => f.type === FrameType.LinkCookie);
    if (cookie?.type === FrameType.LinkCookie) stranger.send(encodeSecurityFrame({ ...hello, cookie: cookie.cookie }), port);
    await pause(300);
    stranger.received.length = 0;
    const refusedBefore = status().nat.relayServer.refused as number;
    stranger.send(allocate(), port);
    // No allocation for an address that never proved it holds the keys, and no answer either
    // (issue 17: a stranger's Allocate is dropped, so it cannot be used to reflect traffic).
    assert.ok(await eventually(() => status().nat.relayServer.refused > refusedBefore, 3_000, 50), 'the Allocate was refused');
    assert.equal(stranger.received.length, 0, 'and not answered');
    assert.equal(status().nat.relayServer.active, 0);
  } finally {
    stranger.close();
  }
});

test('from a source with no session, no datagram gets back more bytes than it carried', async () => {
  const hello = frames(intruder.wire).find((f): f is LinkHello => f.type === FrameType.LinkHello)!;
  const kinds: Record<string, Uint8Array> = {
    'first hello': encodeSecurityFrame({ ...hello, session: new Uint8Array(8).fill(0x11), cookie: undefined }),
    'hello with a forged cookie': encodeSecurityFrame({ ...hello, session: new Uint8Array(8).fill(0x12), cookie: new Uint8Array(16).fill(7) }),
    'sealed frame for an unknown session': encodeSecurityFrame({ type: FrameType.Sealed, session: new Uint8Array(8).fill(0x13), counter: 0, ciphertext: new Uint8Array(16) }),
    'stray reply': encodeSecurityFrame({ type: FrameType.LinkReply, initiatorSession: new Uint8Array(8), responderSession: new Uint8Array(8), ephemeral: new Uint8Array(32), certificate: hello.certificate, signature: new Uint8Array(64) }),
    'stray unknown-session hint': encodeSecurityFrame({ type: FrameType.LinkUnknown, session: new Uint8Array(8) }),
  };
  // One datagram from each fresh source: what a spoofer gets per packet, before any per-source limit applies.
  const ratios: Record<string, number> = {};
  for (const [kind, bytes] of Object.entries(kinds)) {
    const source = await bareSocket();
    source.send(bytes, port);
    await pause(400);
    const out = source.received.reduce((n, b) => n + b.length, 0);
    ratios[kind] = out / bytes.length;
    source.close();
  }
  console.log(JSON.stringify({ reflectionBytesOutPerByteIn: ratios }));
  for (const [kind, ratio] of Object.entries(ratios)) assert.ok(ratio <= 1, `${kind}: ${ratio.toFixed(2)} bytes out per byte in (${JSON.stringify(ratios)})`);
  assert.equal(peer.child.exitCode, null);
});

test('a flood of junk hellos from a thousand addresses does not keep an honest peer from joining', async () => {
  const hello = frames(intruder.wire).find((f): f is LinkHello => f.type === FrameType.LinkHello)!;
  const sockets = await Promise.all(Array.from({ length: 1000 }, () => bareSocket()));
  let flooding = true;
  let sent = 0;
  const flood = (async () => {
    for (let round = 0; flooding && round < 300; round++) {
      for (const [i, s] of sockets.entries()) {
        // A believable certificate and time, a signature that will not verify: each costs a check if it gets that far.
        s.send(encodeSecurityFrame({ ...hello, session: new Uint8Array([round, i >> 8, i & 0xff, 1, 2, 3, 4, 5]), signature: new Uint8Array(64).fill(round), cookie: undefined }), port);
        sent++;
      }
      await pause(100);
    }
  })();
  try {
    await pause(1000);
    const cPort = await freeUdpPort();
    const c = startProcess(['start', '--data', `${root}/c`, '--open', '--overlay', OVERLAY, '--bind', '127.0.0.1', '--overlay-port', String(cPort), '--bootstrap', `127.0.0.1:${port}`]);
    running.push(c);
    const joined = await eventually(() => JSON.parse(runCli(['status', '--data', `${root}/c`, '--json']).stdout).state === 'joined', 20_000);
    assert.ok(joined, `the honest peer joined during a flood of ${sent} junk hellos: ${c.output.join('').slice(-1500)}`);
  } finally {
    flooding = false;
    await flood;
    for (const s of sockets) s.close();
  }
  const link = status().linkSecurity;
  assert.equal(peer.child.exitCode, null);
  assert.ok(link.handshakesRefused <= 5, `junk hellos never reached a certificate check: ${JSON.stringify(link)}`);
});

test('a hello replayed after its reply is forgotten does not silence the link (its session is never sent on)', async () => {
  const hellos = frames(intruder.wire).filter((f): f is LinkHello => f.type === FrameType.LinkHello);
  // Past the 20 s for which a reply is kept, and the old code's 20 to 50 s memory of answered hellos.
  await pause(Math.max(0, capturedAt + 55_000 - Date.now()));
  for (const hello of hellos) intruder.raw.send(target, encodeSecurityFrame(hello));
  await pause(500);
  intruder.link.send(target, keepalive(intruder.identity.nodeId, 3));
  assert.ok(await eventually(() => intruder.acks.includes(3), 5_000, 50), 'the peer still answers on the session the intruder can open');
  assert.equal(intruder.link.counters.badTags, 0);
  await intruder.close();
});
