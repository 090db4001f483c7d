import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { phoneCommand, SKIP_WITHOUT_BARESIP } from '../helpers/baresip.js';
import { readWav, toneShare } from '../helpers/audio.js';
import { HAS_MINIUPNPD, LAB_PORT, PUBLIC_PEER, type RouterKind, SECOND_PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, type PhoneHome, phoneHome } from './fixture.js';
import { spawnSync } from 'node:child_process';

/*
 * Issue 16 through real NATs, homes laid out as they really are: in each home the home peer runs
 * on a host of its own behind the router, and the family's phone (baresip, knowing nothing of
 * NATs: no STUN, ICE or TURN) is another host on the LAN. For every pair of homes one phone calls
 * the other; each sends its own tone and records what it hears, and each recording must hold the
 * other phone's tone. Both home peers anchor the call; the leg between them crosses both NATs,
 * sealed. tcpdump on the internet's bridge meanwhile must see media, and none of it plain RTP.
 */
/**
 * The homes: one per kind of router, the peer on a host of its own behind it; one whose peer runs
 * on the router itself (the OpenWrt layout: the router's own public address, behind its own
 * firewall, which lets in from the WAN only the ports the OpenWrt package opens); and, with
 * miniupnpd, a router that forwards the peer's port when asked. LAB_KINDS=full-cone,upnp narrows
 * the run to those kinds (to look into one pair).
 */
const KINDS: RouterKind[] = (['full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'carrier', 'openwrt', ...(HAS_MINIUPNPD ? ['upnp' as const] : [])] as RouterKind[]).filter(
  (kind) => !process.env.LAB_KINDS || process.env.LAB_KINDS.split(',').includes(kind),
);
const DOMAIN = 'natlab.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const HAS_TCPDUMP = spawnSync('tcpdump', ['--version']).error === undefined;
const { lab, root, bundle: BUNDLE } = natlabFixture('a', 'p2psip-natlab-audio-');

type LabHome = PhoneHome;

/** Of the recordings `phone` made since `since`, the best share of `hz` (the one of what it received). */
function heardSince(dir: string, since: number, hz: number): number {
  const files = readdirSync(dir).filter((f) => f.endsWith('.wav') && statSync(path.join(dir, f)).mtimeMs >= since);
  return Math.max(0, ...files.map((f) => toneShare(readWav(path.join(dir, f)), hz)));
}

test('a plain phone in every kind of home calls one in every other: each hears the other, across both NATs, sealed on the internet', { skip: SKIP_WITHOUT_LAB || SKIP_WITHOUT_BARESIP || (HAS_TCPDUMP ? false : 'tcpdump not installed (.ci/run installs it)'), timeout: 300_000 }, async () => {
  lab.build();
  const capture = path.join(root, 'internet.pcap');
  const tcpdump = lab.spawn(lab.internet, 'tcpdump', ['-i', 'br0', '-U', '-n', '-s', '96', '-w', capture, 'udp']);
  const authority = `${root}/public`;
  assert.equal(runCli(['init', '--data', authority, '--overlay', DOMAIN]).code, 0);
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', authority, '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => peerStatus(authority).state === 'joined', 10_000), 'the public peer runs');
  // A second public peer: RFC 5780's "change IP" needs one (miniupnpd's STUN check).
  const second = `${root}/public-2`;
  const secondToken = JSON.parse(runCli(['invite', '--data', authority, '--json']).stdout).token;
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'join', secondToken, '--data', second, '--bind', SECOND_PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => peerStatus(second).state === 'joined', 15_000), 'the second public peer runs');

  const homes: LabHome[] = [];
  for (const [i, kind] of KINDS.entries()) homes.push(await phoneHome(lab, root, authority, kind, { domain: DOMAIN, toneHz: 400 + 150 * i, sipPort: SIP_PORT, phonePort: PHONE_PORT }));
  for (const h of homes) assert.ok(await eventually(() => /200 OK \(\) \[1 binding\]/.test(h.phone.output()), 15_000), `${h.user} registered: ${h.phone.output().slice(-400)}`);
  // The peer on the router has the router's public address, and its firewall lets in what the package opens: it is reachable
  // unasked, and relays (on the package's relay ports).
  for (const h of homes.filter((h) => h.home.kind === 'openwrt')) assert.deepEqual([peerStatus(h.dir).nat.attachFirst, peerStatus(h.dir).nat.relaying], [false, `${h.home.wan}:${LAB_PORT}`]);
  assert.ok(await eventually(() => homes.every((h) => runCli(['lookup', `sip:${h.user}@${DOMAIN}`, '--data', homes[0].dir]).code === 0), 20_000), 'every user is found');

  const results: string[] = [];
  const failures: string[] = [];
  for (let i = 0; i < homes.length; i++) {
    for (let j = i + 1; j < homes.length; j++) {
      const [caller, callee] = [homes[i], homes[j]];
      const established = (h: LabHome) => (h.phone.output().match(/Call established/g) ?? []).length;
      const closed = (h: LabHome) => (h.phone.output().match(/session closed|terminated/g) ?? []).length;
      const before = { caller: established(caller), callee: established(callee), closedCaller: closed(caller), closedCallee: closed(callee) };
      // Half the calls are ended by the callee: its BYE must find its way back to the caller's home too.
      const calleeHangsUp = (i + j) % 2 === 1;
      const since = Date.now() - 1000;
      phoneCommand(caller.phone, `/dial sip:${callee.user}@${DOMAIN}`);
      const dialled = Date.now();
      // Answered within 20 s: a link between two homes that went quiet may cost SIP a retry or two
      // through the overlay (the setup time is printed for each pair).
      const up = await eventually(() => established(caller) > before.caller && established(callee) > before.callee, 20_000);
      const setupMs = Date.now() - dialled;
      if (up) await new Promise((resolve) => setTimeout(resolve, 2500));
      const media = peerStatus(caller.dir).sip?.media ?? {};
      const call = JSON.parse(runCli(['calls', '--data', caller.dir, '--json']).stdout || '[]')[0] ?? {};
      phoneCommand((calleeHangsUp ? callee : caller).phone, '/hangup');
      const ended = await eventually(() => (calleeHangsUp ? closed(caller) > before.closedCaller : closed(callee) > before.closedCallee), 5_000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // sndfile closes its files
      const calleeHeard = heardSince(callee.phone.recordings, since, caller.toneHz);
      const callerHeard = heardSince(caller.phone.recordings, since, callee.toneHz);
      const ok = up && calleeHeard > 0.5 && callerHeard > 0.5 && ended;
      const line = `${caller.home.kind} -> ${callee.home.kind}: ${ok ? 'both hear each other' : 'FAILED'} (answered in ${setupMs} ms; ${calleeHangsUp ? 'callee' : 'caller'} hung up, ${ended ? 'the other phone heard it' : 'THE OTHER PHONE NEVER HEARD IT'}; callee heard ${callerShare(calleeHeard)}, caller heard ${callerShare(callerHeard)}; ${call.path ?? '?'} via ${call.via ?? '?'}; caller's anchor in ${media.packetsIn ?? 0} out ${media.packetsOut ?? 0})`;
      results.push(line);
      if (process.env.LAB_VERBOSE && setupMs > 3000) console.log(`SLOW ${line}\n--- caller's home\n${lab.output(caller.peer)}\n--- callee's home\n${lab.output(callee.peer)}`);
      const sip = (h: LabHome) => JSON.stringify({ proxy: peerStatus(h.dir).sip?.proxy, transport: peerStatus(h.dir).sip?.transport, media: peerStatus(h.dir).sip?.media });
      if (!ok) failures.push(`${line}\ncaller's home: ${sip(caller)}\ncallee's home: ${sip(callee)}\n${caller.phone.output().slice(-300)}\n${callee.phone.output().slice(-300)}\n${process.env.LAB_VERBOSE ? `${lab.output(caller.peer)}\n${lab.output(callee.peer)}` : ''}`);
    }
  }
  console.log(`\nAudio between homes through the NAT lab (share of the other phone's tone in each recording):\n${results.join('\n')}\n`);
  assert.deepEqual(failures, [], 'every pair hears each other');
  for (const h of homes) assert.equal(peerStatus(h.dir).sip.media.portsInUse, 0, `${h.home.kind}: every call's ports freed`);

  // The control: 20 plain RTP packets across the bridge to a home router, which the check must see.
  lab.in(lab.internet, process.execPath, ['-e', PLAIN_RTP_SENDER, homes[0].home.wan]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  tcpdump.kill('SIGINT');
  await new Promise((resolve) => tcpdump.once('exit', resolve));
  const { media, plainRtp } = inspectCapture(readFileSync(capture));
  assert.ok(media > 500, `the capture saw the calls' media on the internet: ${media} datagrams`);
  assert.equal(plainRtp, 19, 'no plaintext RTP on the internet but the control\'s 20 packets (19 steps)');
});

/** Sends 20 plain RTP packets (PCMU, 20 ms apart in timestamp) from the public peer's address to the address given. */
const PLAIN_RTP_SENDER = `
const socket = require('node:dgram').createSocket('udp4');
socket.bind(0, '198.18.0.1', async () => {
  for (let i = 0; i < 20; i++) {
    const packet = Buffer.alloc(172);
    packet[0] = 0x80;
    packet.writeUInt16BE(1000 + i, 2);
    packet.writeUInt32BE(5000 + 160 * i, 4);
    packet.writeUInt32BE(0x12345678, 8);
    await new Promise((resolve) => socket.send(packet, 40998, process.argv[1], resolve));
  }
  socket.close();
});`;

function callerShare(share: number): string {
  return share.toFixed(3);
}

/**
 * Reads a pcap of UDP on the internet bridge: how many datagrams were media (any port but the
 * overlay's), and how many of them are plain RTP: version 2, and in a run of packets of one SSRC
 * whose sequence numbers step by 1 and timestamps by 160 (20 ms of G.711), as a phone sends.
 * Sealed media begins with a counter, and nothing sealed shows RTP's steps.
 */
function inspectCapture(pcap: Buffer): { media: number; plainRtp: number } {
  const streams = new Map<string, { seq: number; timestamp: number; steps: number }>();
  let media = 0;
  let offset = 24;
  for (let records = 0; offset + 16 <= pcap.length && records < 1_000_000; records++) {
    const captured = pcap.readUInt32LE(offset + 8);
    const frame = pcap.subarray(offset + 16, offset + 16 + captured);
    offset += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const udp = ip.subarray((ip[0] & 0x0f) * 4);
    if (ip[9] !== 17 || udp.length < 8) continue;
    const [source, destination] = [udp.readUInt16BE(0), udp.readUInt16BE(2)];
    if (source === LAB_PORT || destination === LAB_PORT) continue;
    const payload = udp.subarray(8);
    media++;
    if (payload.length >= 12 && payload[0] >> 6 === 2) {
      const key = `${source}>${destination}/${payload.subarray(8, 12).toString('hex')}`;
      const [seq, timestamp] = [payload.readUInt16BE(2), payload.readUInt32BE(4)];
      const last = streams.get(key);
      const step = last !== undefined && seq === ((last.seq + 1) & 0xffff) && timestamp === (last.timestamp + 160) % 2 ** 32;
      streams.set(key, { seq, timestamp, steps: (last?.steps ?? 0) + (step ? 1 : 0) });
    }
  }
  let plainRtp = 0;
  for (const stream of streams.values()) if (stream.steps >= 10) plainRtp += stream.steps;
  return { media, plainRtp };
}
