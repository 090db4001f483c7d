import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { phoneCommand, SKIP_WITHOUT_BARESIP } from '../helpers/baresip.js';
import { readWav, type Recording, toneShare } from '../helpers/audio.js';
import { LAB_PORT, PUBLIC_PEER, type RouterKind, SECOND_PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, type PhoneHome, phoneHome } from './fixture.js';

/*
 * Issue 16: "a relay peer killed mid-call: audio resumes through another". Two public peers relay;
 * a phone behind a symmetric NAT calls one behind a port-restricted NAT, a pair that can only meet
 * through a relay. Mid-call the relay that carries the call is killed (SIGKILL: no goodbye). The
 * home whose allocation it held notices within a second or so (its liveness checks), allocates on
 * the other relay and Attaches again; each anchor's longest silence from the other home must stay
 * under 3 s, and each phone's recording must end with the other's tone.
 */
const KINDS: [RouterKind, RouterKind] = ['symmetric', 'port-restricted'];
const DOMAIN = 'failover.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const { lab, root, bundle: BUNDLE } = natlabFixture('f', 'p2psip-natlab-failover-');
// The failover's steps (relay lost, new allocation, links moved, each timed) reach a failure's message.
process.env.P2PSIP_LOG ??= 'p2psip.relay:info,p2psip.nat:info';

type LabHome = PhoneHome;

/** The last `seconds` of a recording. */
function tail(recording: Recording, seconds: number): Recording {
  return { ...recording, samples: recording.samples.subarray(Math.max(0, recording.samples.length - seconds * recording.sampleRate)) };
}

/** Of the recordings in `dir`, the best share of `hz` in the last `seconds` of each. */
function heardAtTheEnd(dir: string, hz: number, seconds: number): number {
  const files = readdirSync(dir).filter((f) => f.endsWith('.wav') && statSync(path.join(dir, f)).size > 44);
  return Math.max(0, ...files.map((f) => toneShare(tail(readWav(path.join(dir, f)), seconds), hz)));
}

function theCall(h: LabHome): Record<string, any> {
  return JSON.parse(runCli(['calls', '--data', h.dir, '--json']).stdout || '[]')[0] ?? {};
}

test('a call between homes whose relay peer is killed moves to another relay with under 3 s of silence; held and resumed after, its audio comes back', { skip: SKIP_WITHOUT_LAB || SKIP_WITHOUT_BARESIP, timeout: 240_000 }, async () => {
  lab.build();
  const publicDirs = [`${root}/public-1`, `${root}/public-2`];
  assert.equal(runCli(['init', '--data', publicDirs[0], '--overlay', DOMAIN]).code, 0);
  const publicPeers = [lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', publicDirs[0], '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off'])];
  assert.ok(await eventually(() => peerStatus(publicDirs[0]).state === 'joined', 10_000), 'the first public peer runs');
  const relayToken = JSON.parse(runCli(['invite', '--data', publicDirs[0], '--json']).stdout).token;
  publicPeers.push(lab.spawn(lab.internet, process.execPath, [BUNDLE, 'join', relayToken, '--data', publicDirs[1], '--bind', SECOND_PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']));
  assert.ok(await eventually(() => peerStatus(publicDirs[1]).state === 'joined', 15_000), 'the second public peer runs');

  if (process.env.LAB_DUMP) lab.spawn(lab.internet, 'tcpdump', ['-i', 'br0', '-U', '-n', '-w', `${process.env.LAB_DUMP}.pcap`, 'udp']); // LAB_DUMP=/tmp/x: the internet side's UDP, and on failure each peer's log
  const homes: LabHome[] = [];
  for (const [i, kind] of KINDS.entries()) homes.push(await phoneHome(lab, root, publicDirs[0], kind, { domain: DOMAIN, toneHz: 500 + 300 * i, sipPort: SIP_PORT, phonePort: PHONE_PORT }));
  // Both homes filter what they did not ask for: each holds an allocation on one of the relays.
  assert.ok(await eventually(() => homes.every((h) => peerStatus(h.dir).nat?.relay?.state === 'allocated'), 30_000), 'both homes hold a relay allocation');
  for (const h of homes) assert.ok(await eventually(() => /200 OK \(\) \[1 binding\]/.test(h.phone.output()), 15_000), `${h.user} registered`);
  assert.ok(await eventually(() => runCli(['lookup', `sip:${homes[1].user}@${DOMAIN}`, '--data', homes[0].dir]).code === 0, 20_000), 'the callee is found');

  const [caller, callee] = homes;
  phoneCommand(caller.phone, `/dial sip:${callee.user}@${DOMAIN}`);
  const established = (h: LabHome) => /Call established/.test(h.phone.output());
  assert.ok(await eventually(() => established(caller) && established(callee), 20_000), `answered: ${caller.phone.output().slice(-300)}`);
  assert.ok(await eventually(() => theCall(caller).path === 'relayed' && theCall(callee).path === 'relayed', 10_000), `the call goes through a relay: ${JSON.stringify([theCall(caller), theCall(callee)])}`);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  await sleep(1500);

  // Which relay carries it: the home whose relay it is names its Node-ID, the other its relayed address.
  const publicIds = publicDirs.map((d) => peerStatus(d).nodeId as string);
  const relayNamed = [theCall(caller).relay, theCall(callee).relay] as (string | null)[];
  const victim = [0, 1].find((i) => relayNamed.some((r) => r === publicIds[i] || r?.startsWith(`${[PUBLIC_PEER, SECOND_PUBLIC_PEER][i]}:`)));
  assert.ok(victim !== undefined, `the relay is one of the public peers: ${JSON.stringify(relayNamed)} ${JSON.stringify(publicIds)}`);
  const before = homes.map((h) => ({ received: theCall(h).packetsReceived as number, gap: theCall(h).longestGapMs.home as number }));
  publicPeers[victim].kill('SIGKILL');
  const killedAt = Date.now();

  // Audio comes back through the other relay: packets from the other home flow again at each anchor.
  const flowing = async (h: LabHome, since: number) => {
    const first = theCall(h).packetsReceived as number;
    await new Promise((resolve) => setTimeout(resolve, 500));
    return (theCall(h).packetsReceived as number) > Math.max(first, since);
  };
  const resumed = await eventually(async () => (await flowing(caller, before[0].received)) && (await flowing(callee, before[1].received)), 15_000);
  const resumedAfterMs = Date.now() - killedAt;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = homes.map((h) => theCall(h));
  const failover = homes.map((h) => peerStatus(h.dir).nat?.relayFailover ?? {});
  console.log(
    `\nRelay ${victim + 1} killed mid-call (${KINDS.join(' -> ')}): audio flowing again both ways ${resumed ? `within ${resumedAfterMs} ms (polled)` : 'NEVER'}; ` +
      `longest silence from the other home: caller's anchor ${after[0].longestGapMs?.home} ms, callee's ${after[1].longestGapMs?.home} ms; ` +
      `path now ${after[0].path} via ${after[0].relay ?? after[0].via}; failover ${JSON.stringify(failover)}\n`,
  );
  const relayLog = homes.map((h) => lab.output(h.peer).split('\n').filter((l) => /relay|attach|ice/i.test(l)).join('\n')).join('\n---\n');
  // Each home's failover steps, in ms from the kill: where the silence went.
  for (const h of homes) {
    const steps = lab.output(h.peer).split('\n').flatMap((line) => {
      const m = /^(\S+Z) \S+ \S+ (relay-lost|relay-survey|sealed-link-opened|relay-allocated|relay-refused|relay-link-moved|media-link-failed)(.*)$/.exec(line);
      return m && Date.parse(m[1]) >= killedAt - 1000 ? [`+${Date.parse(m[1]) - killedAt} ${m[2]}${m[3]}`] : [];
    });
    // And the standby it held (the last survey before the kill): losing the relay needs no handshake with it.
    const standby = lab.output(h.peer).split('\n').filter((line) => / relay-standby /.test(line) && Date.parse(line.split(' ')[0]) < killedAt).pop();
    console.log(`${h.home.name} (${h.home.kind}): ${steps.join(' | ') || 'no failover steps'}; before: ${standby ?? 'no standby survey'}`);
  }
  if (process.env.LAB_VERBOSE) console.log(`killed at ${new Date(killedAt).toISOString()}\n${relayLog}`);
  assert.ok(resumed, `media flows again: ${JSON.stringify(after)}; killed at ${new Date(killedAt).toISOString()}\n${relayLog}`);
  for (const [i, call] of after.entries()) assert.ok(call.longestGapMs.home < 3000, `${KINDS[i]} home: longest silence ${call.longestGapMs.home} ms (before the kill: ${before[i].gap} ms); killed at ${new Date(killedAt).toISOString()}\n${relayLog}`);
  assert.ok(failover.some((f) => f.relaysLost === 1 && f.linksMoved >= 1), `the home whose relay died moved its link: ${JSON.stringify(failover)}`);

  // Hold and resume by re-INVITE: the new offers and answers go through both anchors, and audio comes back.
  const reoffersBefore = homes.map((h) => peerStatus(h.dir).sip.media.reoffers ?? 0);
  phoneCommand(caller.phone, '/hold');
  await sleep(2000);
  phoneCommand(caller.phone, '/resume');
  const resumedAt = Date.now();
  // The resume's re-INVITE crosses the overlay (a tunnel try lost on a quiet link costs 1.5 s).
  const flowingBothWays = async () => (await Promise.all(homes.map((h) => flowing(h, 0)))).every(Boolean);
  const backAfterResume = await eventually(flowingBothWays, 6_000, 100);
  // And it keeps flowing: more from the other home at each anchor over the next 2 s.
  const counts = homes.map((h) => theCall(h).packetsReceived as number);
  await sleep(2000);
  const flowingAfterResume = homes.map((h, i) => (theCall(h).packetsReceived as number) > counts[i] + 50);
  console.log(`audio flowing both ways again ${Date.now() - resumedAt} ms after the resume`);
  // (A re-INVITE that needed a tunnel retry through the overlay may reach the far anchor a moment later.)
  const reofferCounts = () => homes.map((h, i) => (peerStatus(h.dir).sip.media.reoffers ?? 0) - reoffersBefore[i]);
  await eventually(() => reofferCounts().every((n) => n >= 2), 5_000);
  const reoffers = reofferCounts();
  console.log(`hold and resume: re-offers through each anchor ${reoffers.join(', ')}; audio flowing again each way ${flowingAfterResume.join(', ')}; longest silence at the caller's phone side ${theCall(caller).longestGapMs.phone} ms`);
  assert.ok(reoffers.every((n) => n >= 2), `the hold's and the resume's re-INVITE went through both anchors: ${reoffers.join(', ')}`);
  assert.ok(backAfterResume, `audio after resume: ${caller.phone.output().slice(-600)}`);
  if (!flowingAfterResume.every(Boolean) && process.env.LAB_DUMP) {
    for (const h of homes) writeFileSync(`${process.env.LAB_DUMP}-${h.home.name}.log`, lab.output(h.peer));
    writeFileSync(`${process.env.LAB_DUMP}-relay.json`, JSON.stringify(peerStatus(publicDirs[1 - victim]).nat, null, 1));
  }
  assert.deepEqual(flowingAfterResume, [true, true], `and it keeps flowing: ${homes.map((h) => JSON.stringify({ call: theCall(h), media: peerStatus(h.dir).sip?.media, nat: peerStatus(h.dir).nat, links: peerStatus(h.dir).linkSecurity })).join('\n')}\n${homes.map((h) => lab.output(h.peer)).join('\n----\n')}`);
  await sleep(1000);

  phoneCommand(caller.phone, '/hangup');
  await eventually(() => /session closed|terminated/.test(callee.phone.output()), 5_000);
  await new Promise((resolve) => setTimeout(resolve, 500)); // sndfile closes its files
  const heard = [heardAtTheEnd(caller.phone.recordings, callee.toneHz, 2), heardAtTheEnd(callee.phone.recordings, caller.toneHz, 2)];
  console.log(`tone share in the last 2 s of each recording: caller heard ${heard[0].toFixed(3)}, callee heard ${heard[1].toFixed(3)}`);

  assert.ok(heard[0] > 0.5 && heard[1] > 0.5, `each phone hears the other at the end of the call: ${heard.map((h) => h.toFixed(3)).join(', ')}`);
});
