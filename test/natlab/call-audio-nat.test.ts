import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { phoneCommand, SKIP_WITHOUT_BARESIP, type Softphone, startBaresip } from '../helpers/baresip.js';
import { readWav, toneShare } from '../helpers/audio.js';
import { type Home, LAB_PORT, PUBLIC_PEER, type RouterKind, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';
import { spawnSync } from 'node:child_process';

/*
 * Issue 16 through real NATs, homes laid out as they really are: in each home the home peer runs
 * on a host of its own behind the router, and the family's phone (baresip, knowing nothing of
 * NATs: no STUN, ICE or TURN) is another host on the LAN. For every pair of homes one phone calls
 * the other; each sends its own tone and records what it hears, and each recording must hold the
 * other phone's tone. Both home peers anchor the call; the leg between them crosses both NATs,
 * sealed. tcpdump on the internet's bridge meanwhile must see media, and none of it plain RTP.
 */
const KINDS: RouterKind[] = ['full-cone', 'address-restricted', 'port-restricted', 'carrier'];
const DOMAIN = 'natlab.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const HAS_TCPDUMP = spawnSync('tcpdump', ['--version']).error === undefined;
const { lab, root, bundle: BUNDLE } = natlabFixture('a', 'p2psip-natlab-audio-');

interface LabHome {
  readonly home: Home;
  readonly dir: string;
  readonly user: string;
  readonly toneHz: number;
  readonly phone: Softphone & { recordings: string };
}

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

  const homes: LabHome[] = [];
  for (const [i, kind] of KINDS.entries()) {
    const home = lab.addHome(kind);
    const phoneHost = lab.addPhone(home);
    const user = `u${home.name}`;
    const dir = `${root}/${home.name}`;
    const token = JSON.parse(runCli(['invite', '--data', authority, '--user', user, '--json']).stdout).token;
    lab.spawn(home.ns, process.execPath, [BUNDLE, 'join', token, '--data', dir, '--bind', home.host, '--overlay-port', `${LAB_PORT}`, '--sip-port', `${SIP_PORT}`, '--sip-digest', 'MD5']);
    assert.ok(await eventually(() => peerStatus(dir).state === 'joined', 30_000), `${kind} home joined`);
    assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
    const recordings = path.join(root, `${user}-heard`);
    const toneHz = 400 + 150 * i;
    const phone = startBaresip(path.join(root, `${user}-phone`), { user, domain: DOMAIN, password: `${user}-password`, proxyPort: SIP_PORT }, PHONE_PORT, {
      toneHz,
      recordDir: recordings,
      host: phoneHost.host,
      proxyHost: home.host,
      spawnWith: (command, args) => lab.spawn(phoneHost.ns, command, args, { stdin: true }),
    });
    homes.push({ home, dir, user, toneHz, phone: { ...phone, recordings } });
  }
  for (const h of homes) assert.ok(await eventually(() => /200 OK \(\) \[1 binding\]/.test(h.phone.output()), 15_000), `${h.user} registered: ${h.phone.output().slice(-400)}`);
  assert.ok(await eventually(() => homes.every((h) => runCli(['lookup', `sip:${h.user}@${DOMAIN}`, '--data', homes[0].dir]).code === 0), 20_000), 'every user is found');

  const results: string[] = [];
  const failures: string[] = [];
  for (let i = 0; i < homes.length; i++) {
    for (let j = i + 1; j < homes.length; j++) {
      const [caller, callee] = [homes[i], homes[j]];
      const established = (h: LabHome) => (h.phone.output().match(/Call established/g) ?? []).length;
      const closed = (h: LabHome) => (h.phone.output().match(/session closed|terminated/g) ?? []).length;
      const before = { caller: established(caller), callee: established(callee), closedCallee: closed(callee) };
      const since = Date.now() - 1000;
      phoneCommand(caller.phone, `/dial sip:${callee.user}@${DOMAIN}`);
      const up = await eventually(() => established(caller) > before.caller && established(callee) > before.callee, 10_000);
      if (up) await new Promise((resolve) => setTimeout(resolve, 2500));
      const media = peerStatus(caller.dir).sip?.media ?? {};
      phoneCommand(caller.phone, '/hangup');
      await eventually(() => closed(callee) > before.closedCallee, 5_000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // sndfile closes its files
      const calleeHeard = heardSince(callee.phone.recordings, since, caller.toneHz);
      const callerHeard = heardSince(caller.phone.recordings, since, callee.toneHz);
      const ok = up && calleeHeard > 0.5 && callerHeard > 0.5;
      const line = `${caller.home.kind} -> ${callee.home.kind}: ${ok ? 'both hear each other' : 'FAILED'} (callee heard ${callerShare(calleeHeard)}, caller heard ${callerShare(callerHeard)}; caller's anchor in ${media.packetsIn ?? 0} out ${media.packetsOut ?? 0})`;
      results.push(line);
      if (!ok) failures.push(`${line}\n${caller.phone.output().slice(-500)}\n${callee.phone.output().slice(-500)}`);
    }
  }
  console.log(`\nAudio between homes through the NAT lab (share of the other phone's tone in each recording):\n${results.join('\n')}\n`);
  assert.deepEqual(failures, [], 'every pair hears each other');
  for (const h of homes) assert.equal(peerStatus(h.dir).sip.media.portsInUse, 0, `${h.home.kind}: every call's ports freed`);

  tcpdump.kill('SIGINT');
  await new Promise((resolve) => tcpdump.once('exit', resolve));
  const { media, plainRtp } = inspectCapture(readFileSync(capture));
  assert.ok(media > 500, `the capture saw the calls' media on the internet: ${media} datagrams`);
  assert.equal(plainRtp, 0, 'no plaintext RTP on the internet');
});

function callerShare(share: number): string {
  return share.toFixed(3);
}

/**
 * Reads a pcap of UDP on the internet bridge: how many datagrams were media (any port but the
 * overlay's), and how many of them look like plain RTP (version 2 and an SSRC seen 10 times or
 * more: sealed datagrams begin with a counter, so their first byte is never RTP's 0x80).
 */
function inspectCapture(pcap: Buffer): { media: number; plainRtp: number } {
  const ssrcs = new Map<string, number>();
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
      const ssrc = payload.subarray(8, 12).toString('hex');
      ssrcs.set(ssrc, (ssrcs.get(ssrc) ?? 0) + 1);
    }
  }
  let plainRtp = 0;
  for (const count of ssrcs.values()) if (count >= 10) plainRtp += count;
  return { media, plainRtp };
}
