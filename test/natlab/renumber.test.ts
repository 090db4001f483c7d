import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { phoneCommand, SKIP_WITHOUT_BARESIP } from '../helpers/baresip.js';
import { readWav, toneShare } from '../helpers/audio.js';
import { LAB_PORT, PUBLIC_PEER, SECOND_PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, type PhoneHome, phoneHome } from './fixture.js';

/*
 * The ISP renumbers a home (a PPPoE reconnect, a new DHCP lease on the WAN; German lines are cut
 * once a day): its router's public address changes, and every mapping the router held goes with
 * the old one. Two port-restricted homes (plain MASQUERADE, the commonest router) talk through a
 * call whose media found a direct way; home 1 is renumbered in the middle of it.
 *
 * What must follow: the call's audio comes back both ways (the media moves to the overlay link
 * once the direct path is silent, the ring takes home 1 back at its new address, home 2 Attaches
 * to it there); then the media finds the direct way again (home 2 probes home 1's media port at
 * the host where its sealed link to home 1 proved home 1 is now); home 1 learns its new public address at once,
 * for its next Attaches and calls; and new calls from the renumbered home and to it, after the
 * first ends, have audio both ways.
 */
const DOMAIN = 'renumber.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const NEW_WAN = '198.18.0.111';
/** How long a call may be silent after its home is renumbered (it was silent for good before). */
const AUDIO_BACK_WITHIN_MS = 30_000;
/** How long after that its media may stay on the overlay link before the direct way is found again. */
const DIRECT_AGAIN_WITHIN_MS = 20_000;
const { lab, root, bundle: BUNDLE } = natlabFixture('n', 'p2psip-natlab-renumber-');
process.env.P2PSIP_LOG ??= 'p2psip.relay:info,p2psip.nat:info,p2psip.media:info';

function theCall(h: PhoneHome): Record<string, any> {
  return JSON.parse(runCli(['calls', '--data', h.dir, '--json']).stdout || '[]')[0] ?? {};
}

/** Packets from the other home reach this anchor now: more of them half a second later. */
async function flowing(h: PhoneHome): Promise<boolean> {
  const first = theCall(h).packetsReceived as number | undefined;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const then = theCall(h).packetsReceived as number | undefined;
  return first !== undefined && then !== undefined && then > first;
}

/** The best share of `hz` among the recordings in `dir` that are not in `before`. */
function heardInNewRecordings(dir: string, before: ReadonlySet<string>, hz: number): number {
  const files = readdirSync(dir).filter((f) => f.endsWith('.wav') && !before.has(f) && statSync(path.join(dir, f)).size > 44);
  return Math.max(0, ...files.map((f) => toneShare(readWav(path.join(dir, f)), hz)));
}

test('a home renumbered by its ISP mid-call: the call hears both ways again, the home learns its new address, and its next calls out and in have audio', { skip: SKIP_WITHOUT_LAB || SKIP_WITHOUT_BARESIP, timeout: 240_000 }, async () => {
  lab.build();
  const publicDirs = [`${root}/public-1`, `${root}/public-2`];
  assert.equal(runCli(['init', '--data', publicDirs[0], '--overlay', DOMAIN]).code, 0);
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', publicDirs[0], '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => peerStatus(publicDirs[0]).state === 'joined', 10_000), 'the first public peer runs');
  const token = JSON.parse(runCli(['invite', '--data', publicDirs[0], '--json']).stdout).token;
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'join', token, '--data', publicDirs[1], '--bind', SECOND_PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => peerStatus(publicDirs[1]).state === 'joined', 15_000), 'the second public peer runs');

  const homes: PhoneHome[] = [];
  for (const i of [0, 1]) homes.push(await phoneHome(lab, root, publicDirs[0], 'port-restricted', { domain: DOMAIN, toneHz: 500 + 300 * i, sipPort: SIP_PORT, phonePort: PHONE_PORT }));
  for (const h of homes) assert.ok(await eventually(() => /200 OK \(\) \[1 binding\]/.test(h.phone.output()), 15_000), `${h.user} registered`);
  const [renumbered, other] = homes;
  assert.ok(await eventually(() => runCli(['lookup', `sip:${renumbered.user}@${DOMAIN}`, '--data', other.dir]).code === 0, 20_000), 'the callee is found');

  // The first call: home 2 calls home 1; its media finds the direct way between the homes.
  phoneCommand(other.phone, `/dial sip:${renumbered.user}@${DOMAIN}`);
  const established = (h: PhoneHome, n: number) => (h.phone.output().match(/Call established/g) ?? []).length >= n;
  assert.ok(await eventually(() => established(renumbered, 1) && established(other, 1), 20_000), `answered: ${other.phone.output().slice(-300)}`);
  assert.ok(await eventually(async () => (await flowing(renumbered)) && (await flowing(other)), 10_000), 'audio flows both ways before');
  const oldWan = renumbered.home.wan;
  assert.equal(peerStatus(renumbered.dir).nat?.reflexive?.[0]?.mapped, `${oldWan}:${LAB_PORT}`);

  // The ISP renumbers home 1: the old address goes, and with it every mapping the router held.
  lab.in(renumbered.home.router, 'ip', ['addr', 'del', `${oldWan}/24`, 'dev', 'wan']);
  lab.in(renumbered.home.router, 'ip', ['addr', 'add', `${NEW_WAN}/24`, 'dev', 'wan']);
  lab.in(renumbered.home.router, 'sh', ['-c', 'conntrack -F 2>/dev/null || true']);
  const renumberedAt = Date.now();

  const learnt = await eventually(() => peerStatus(renumbered.dir).nat?.reflexive?.[0]?.mapped === `${NEW_WAN}:${LAB_PORT}`, 15_000, 200);
  const learntAfterMs = Date.now() - renumberedAt;
  const back = await eventually(async () => (await flowing(renumbered)) && (await flowing(other)), AUDIO_BACK_WITHIN_MS, 200);
  const backAfterMs = Date.now() - renumberedAt;
  const directAgain = back && (await eventually(() => homes.every((h) => theCall(h).via === 'media-ports'), DIRECT_AGAIN_WITHIN_MS, 200));
  const directAfterMs = Date.now() - renumberedAt;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const calls = homes.map((h) => theCall(h));
  console.log(
    `\nRenumbered mid-call: new public address learnt ${learnt ? `after ${learntAfterMs} ms` : 'NEVER'}; audio flowing both ways again ${back ? `within ${backAfterMs} ms (polled)` : 'NEVER'}; ` +
      `longest silence from the other home: renumbered home's anchor ${calls[0].longestGapMs?.home} ms, the other's ${calls[1].longestGapMs?.home} ms; ` +
      `media ports to media ports again ${directAgain ? `within ${directAfterMs} ms` : 'NEVER'}; path now ${calls[0].path} via ${calls[0].via}\n`,
  );
  const logs = () => homes.map((h) => `${h.home.name}:\n${lab.output(h.peer).slice(-3000)}`).join('\n');
  assert.ok(learnt, `the renumbered home learns its new public address: ${JSON.stringify(peerStatus(renumbered.dir).nat?.reflexive)}\n${logs()}`);
  assert.ok(back, `the call's audio comes back both ways within ${AUDIO_BACK_WITHIN_MS} ms: ${JSON.stringify(calls)}\n${logs()}`);
  assert.ok(directAgain, `the call's media finds the direct way between the homes again: ${JSON.stringify(calls)}\n${logs()}`);

  phoneCommand(other.phone, '/hangup');
  assert.ok(await eventually(() => /session closed|terminated/.test(renumbered.phone.output()), 5_000), 'the first call ends');
  await new Promise((resolve) => setTimeout(resolve, 500));

  // New calls, from the renumbered home and to it: each phone hears the other.
  for (const [n, caller, callee] of [[2, renumbered, other], [3, other, renumbered]] as const) {
    const before = homes.map((h) => new Set(readdirSync(h.phone.recordings)));
    phoneCommand(caller.phone, `/dial sip:${callee.user}@${DOMAIN}`);
    assert.ok(await eventually(() => established(caller, n) && established(callee, n), 20_000), `call ${n} is answered: ${caller.phone.output().slice(-400)}`);
    assert.ok(await eventually(async () => (await flowing(renumbered)) && (await flowing(other)), 10_000), `call ${n}'s audio flows both ways: ${JSON.stringify(homes.map((h) => theCall(h)))}`);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    phoneCommand(caller.phone, '/hangup');
    await eventually(() => (callee.phone.output().match(/session closed|terminated/g) ?? []).length >= n, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // sndfile closes its files
    const heard = [heardInNewRecordings(renumbered.phone.recordings, before[0], other.toneHz), heardInNewRecordings(other.phone.recordings, before[1], renumbered.toneHz)];
    console.log(`call ${n} (${caller === renumbered ? 'from' : 'to'} the renumbered home), tone share of the other side in each recording: renumbered home heard ${heard[0].toFixed(3)}, the other ${heard[1].toFixed(3)}`);
    assert.ok(heard.every((share) => share > 0.5), `each phone hears the other in call ${n}, after the renumbering: ${heard.map((h) => h.toFixed(3)).join(', ')}`);
  }
});
