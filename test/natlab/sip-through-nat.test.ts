import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';
import { type Home, LAB_PORT, PUBLIC_PEER, type RouterKind, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';

/*
 * SIP through real NATs (RFC 7904 over RFC 6940): in each home, a SIPp phone registers to its
 * home peer, which itself sits behind that home's router; then for every pair of home kinds one
 * phone calls the other. The caller's home finds the callee's home in the overlay and carries
 * the call there (over the link their Attach set up, direct or through a relay); the call is
 * answered, ACKed and ended with BYE. Each call carries 5 s of G.711 (SIPp's rtp_stream, 250
 * packets) to a callee that echoes every packet back (SIPp's rtp_echo); the two home peers count
 * what crossed: at least 95% of what the caller sent reaches the callee and is echoed, and at least
 * 95% of the echo comes back to the caller's home.
 */
// LAB_KINDS=symmetric,carrier narrows the run to those homes (to look into one pair).
const KINDS: RouterKind[] = (process.env.LAB_KINDS?.split(',') as RouterKind[] | undefined) ?? ['full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'carrier'];
const DOMAIN = 'natlab.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const ECHO_PORT = 16000;
/** What rtp_stream plays: 5 s of a 700 Hz tone in G.711 mu-law, 160 bytes a packet. */
const AUDIO_PACKETS = 250;
const { lab, root, bundle: BUNDLE } = natlabFixture('s', 'p2psip-natlab-sip-');
const status = peerStatus;

test('a phone in every kind of home calls a phone in every other: answered and torn down across both NATs, 95% of its audio each way', { skip: SKIP_WITHOUT_LAB || SKIP_WITHOUT_SIPP, timeout: 300_000 }, async () => {
  lab.build();
  const authority = `${root}/public`;
  assert.equal(runCli(['init', '--data', authority, '--overlay', DOMAIN]).code, 0);
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', authority, '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => status(authority).state === 'joined', 10_000), 'the public peer runs');

  const homes: { home: Home; dir: string; user: string; peer: ChildProcess }[] = [];
  for (const kind of KINDS) {
    const home = lab.addHome(kind);
    const user = `u${home.name}`;
    const dir = `${root}/${home.name}`;
    const token = JSON.parse(runCli(['invite', '--data', authority, '--user', user, '--json']).stdout).token;
    const peer = lab.spawn(home.ns, process.execPath, [BUNDLE, 'join', token, '--data', dir, '--bind', home.host, '--overlay-port', `${LAB_PORT}`, '--sip-port', `${SIP_PORT}`, '--sip-digest', 'MD5', '--verbose']);
    homes.push({ home, dir, user, peer });
  }
  const joined = await eventually(() => homes.every((h) => status(h.dir).state === 'joined'), 40_000);
  const stuck = homes.filter((h) => status(h.dir).state !== 'joined');
  assert.ok(joined, `not joined: ${stuck.map((h) => `${h.home.kind}=${status(h.dir).state}\n${lab.output(h.peer)}`).join('\n')}`);

  for (const { home, dir, user } of homes) {
    const added = runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]);
    assert.equal(added.code, 0, added.stderr);
    const registered = runSipp('register-digest.xml', `${home.host}:${SIP_PORT}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', DOMAIN, '-set', 'expires', '3600', '-p', `${PHONE_PORT}`, '-t', 'u1'], root, 20, home.ns);
    assert.equal(registered.code, 0, `${user} registers at its ${home.kind} home: ${registered.errors}`);
  }
  const found = (user: string, dir: string) => runCli(['lookup', `sip:${user}@${DOMAIN}`, '--data', dir]).code === 0;
  assert.ok(await eventually(() => homes.every((h) => found(h.user, homes[0].dir)), 20_000), 'every user is found in the overlay');

  const answer = scenarioFrom('uas-answer.xml', { ANSWER_MS: '100' }, root);
  const audioFile = `${root}/tone.raw`;
  writeFileSync(audioFile, toneMulaw(700, AUDIO_PACKETS * 160));
  const withAudio = scenarioFrom('uac-call-rtp.xml', { AUDIO_FILE: audioFile }, root);
  const counted = (h: (typeof homes)[number]) => ({ fromPhones: status(h.dir).sip.media.fromPhones as number, fromHomes: status(h.dir).sip.media.fromHomes as number });
  const results: string[] = [];
  const shortfalls: string[] = [];
  for (let i = 0; i < homes.length; i++) {
    for (let j = i + 1; j < homes.length; j++) {
      const [caller, callee] = [homes[i], homes[j]];
      const before = { caller: counted(caller), callee: counted(callee) };
      const phone = startSipp(answer, ['-p', `${PHONE_PORT}`, '-t', 'u1', '-rtp_echo', '-mp', `${ECHO_PORT}`, '-trace_msg'], root, 40, callee.home.ns);
      const started = Date.now();
      const call = runSipp(withAudio, `${caller.home.host}:${SIP_PORT}`, ['-s', caller.user, '-set', 'domain', DOMAIN, '-set', 'callee', callee.user, '-p', `${PHONE_PORT}`, '-t', 'u1'], root, 35, caller.home.ns);
      const answered = await phone.done;
      // What the callee's phone saw, should the call fail (SIPp's -trace_msg file, named by its pid).
      const uasMessages = () => {
        const file = readdirSync(root).find((f) => f.endsWith(`_${phone.pid}_messages.log`));
        return file ? readFileSync(`${root}/${file}`, 'utf8').slice(-4000) : '(no message log)';
      };
      const uasLine = `callee's phone exit ${answered.code}`;
      // What each home's anchor relayed in this call: the caller's stream, its echo, and the echo's way back.
      const sent = counted(caller).fromPhones - before.caller.fromPhones;
      const crossed = counted(callee).fromHomes - before.callee.fromHomes;
      const echoed = counted(callee).fromPhones - before.callee.fromPhones;
      const back = counted(caller).fromHomes - before.caller.fromHomes;
      const percent = (n: number, of: number) => (of === 0 ? 0 : (100 * n) / of);
      const audio = `audio: caller sent ${sent} of ${AUDIO_PACKETS}, ${crossed} crossed, callee echoed ${echoed} (${percent(echoed, sent).toFixed(1)}%), ${back} came back (${percent(back, echoed).toFixed(1)}%)`;
      const line = `${caller.home.kind} -> ${callee.home.kind}: ${call.code === 0 && answered.code === 0 ? 'answered and ended' : 'FAILED'} (${Date.now() - started} ms); ${audio}`;
      results.push(line);
      if (process.env.LAB_VERBOSE && Date.now() - started > Number(process.env.LAB_SLOW_MS ?? 8000)) console.log(`SLOW ${line}\n--- caller's home\n${lab.output(caller.peer)}\n--- callee's home\n${lab.output(callee.peer)}`);
      const logs = () => (process.env.LAB_VERBOSE ? `\n--- caller's home\n${lab.output(caller.peer)}\n--- callee's home\n${lab.output(callee.peer)}` : '');
      assert.equal(call.code, 0, `${line}\ncaller: ${call.errors}\n${uasLine}: ${answered.errors}\n${uasMessages()}${logs()}`);
      assert.equal(answered.code, 0, `${line}\n${answered.errors}`);
      if (sent < 0.95 * AUDIO_PACKETS || echoed < 0.95 * sent || back < 0.95 * echoed) shortfalls.push(line);
    }
  }
  console.log(`\nSIP calls through the NAT lab, with audio echoed back:\n${results.join('\n')}\n`);
  assert.deepEqual(shortfalls, [], 'at least 95% of the packets sent arrive, each way');
  // Every home is behind a NAT, so the calls went home to home through the overlay's links.
  const received = homes.map((h) => status(h.dir).sip?.transport?.overlayReceived ?? 0);
  assert.ok(received.every((n) => n > 0), `each home received SIP through the overlay: ${received.join(', ')}`);
});

/** `bytes` of a tone at `hz` as G.711 mu-law at 8 kHz (what rtp_stream plays with payload type 0). */
function toneMulaw(hz: number, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = mulaw(0.5 * Math.sin((2 * Math.PI * hz * i) / 8000));
  return out;
}

/** ITU-T G.711 mu-law encoding of one sample in -1..1. */
function mulaw(x: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let sample = Math.max(-CLIP, Math.min(CLIP, Math.round(x * 32767)));
  const sign = sample < 0 ? 0x80 : 0;
  if (sample < 0) sample = -sample;
  sample += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; exponent--, mask >>= 1);
  const mantissa = (sample >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}
