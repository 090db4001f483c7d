import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab } from '../helpers/processes.js';
import { type BackgroundSipp, SKIP_WITHOUT_SIPP, scenarioFrom, startSipp } from '../helpers/sipp.js';
import { homesWithPhones } from '../helpers/sip-homes.js';

/*
 * Issue 16's SDP handling between two homes on loopback, SIPp as the phones (which check every
 * SDP they get with regular expressions): a late offer, hold and resume by re-INVITE, an offer
 * that is not SDP (488 from the caller's own home, nothing forwarded), a call over --max-calls
 * (503 with Retry-After), and a call forked to two phones, one playing early media while the
 * other answers. Both homes run with --max-calls 1.
 */
const { root, running } = processLab('p2psip-media-sip-');
const domain = 'smiths.example';
let homes: Awaited<ReturnType<typeof homesWithPhones>>;
const media = (dir: string) => homes.status(dir).sip.media;
const forwardedAt = (dir: string) => homes.status(dir).sip.proxy.forwarded as number;

test('two homes with SIPp phones, each anchoring at most one call', { skip: SKIP_WITHOUT_SIPP }, async () => {
  homes = await homesWithPhones(root, running, domain, ['--max-calls', '1']);
});

test('a late offer: the 200 offers with the caller\'s home\'s anchor port, the ACK answers with the callee\'s home\'s; both anchors free their ports after the BYE', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = homes.waits('bob', 'uas-late-offer.xml', {});
  const alice = homes.call('alice', 'a', 'bob', 'uac-late-offer.xml');
  assert.equal(alice.code, 0, alice.errors);
  assert.equal((await bob.done).code, 0);
  for (const dir of [homes.dirs.a, homes.dirs.b]) {
    assert.equal(media(dir).anchored, 1, `${dir} anchored the call`);
    assert.equal(media(dir).portsInUse, 0, `${dir} freed its ports`);
  }
});

test('hold and resume by re-INVITE: each side sees the other\'s direction and only its own home\'s anchor ports', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = homes.waits('bob', 'uas-hold.xml', {});
  const alice = homes.call('alice', 'a', 'bob', 'uac-hold.xml');
  assert.equal(alice.code, 0, alice.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  assert.equal(media(homes.dirs.a).anchored, 2, 'the re-INVITEs kept the one call anchored');
  assert.equal(media(homes.dirs.a).portsInUse, 0);
});

test('an offer that is not SDP gets 488 from the caller\'s own home, with the reason; nothing reaches the other home', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const before = forwardedAt(homes.dirs.b);
  const refused = homes.call('alice', 'a', 'bob', 'uac-offer-refused.xml', { EXPECT: '488', SDP: 'this is no session description', HEADER_CHECK: 'SIP/2.0 488 Not Acceptable Here \\(SDP: ' });
  assert.equal(refused.code, 0, refused.errors);
  assert.equal(forwardedAt(homes.dirs.b), before, 'home B never saw it');
  assert.equal(media(homes.dirs.a).portsInUse, 0, 'a refused offer holds no ports');
});

test('a second call while --max-calls 1 is in use gets 503 with Retry-After, and the first call goes on', { skip: SKIP_WITHOUT_SIPP }, async () => {
  // alice's second phone (another binding of hers) calls while her first phone's call is up.
  const [firstPhone, second] = [homes.phones.alice, await freeUdpPort()];
  await homes.register('alice', 'a', 3600, second);
  homes.phones.alice = firstPhone; // calls from "alice" go on from her first phone
  const bob = homes.waits('bob', 'uas-answer.xml', { ANSWER_MS: '100' });
  const first = homes.callAsync('alice', 'a', 'bob', 'uac-call-long.xml', { TALK_MS: '3000' });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(media(homes.dirs.a).active, 1, 'the first call is anchored');
  const busy = homes.callFrom(second, 'alice', 'a', 'bob', 'uac-offer-refused.xml', {
    EXPECT: '503',
    SDP: 'v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6100 RTP/AVP 0',
    HEADER_CHECK: 'Retry-After: 30',
  });
  assert.equal(busy.code, 0, busy.errors);
  assert.equal((await first).code, 0, 'the first call ended normally');
  assert.equal((await bob.done).code, 0);
  assert.ok(media(homes.dirs.a).refused >= 2, 'the 488 and the 503 are counted');
});

/** The port a SIPp phone logged as offered to it (`-trace_logs`, the scenario's `offered-port` line). */
function offeredPort(phone: BackgroundSipp): number {
  const log = readdirSync(root).find((f) => f.endsWith(`_${phone.pid}_logs.log`));
  const match = log ? /offered-port (\d+)/.exec(readFileSync(path.join(root, log), 'utf8')) : null;
  assert.ok(match, `the phone logged its offered port: ${log}`);
  return Number(match[1]);
}

test('an INVITE forked to two of bob\'s phones: each is offered anchor ports of its own; when one answers after the other\'s early media, the loser\'s ports go back, and all of them after the BYE', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const [firstPhone, secondPhone] = [homes.phones.bob, await freeUdpPort()];
  await homes.register('bob', 'b', 3600, secondPhone);
  const early = startSipp(scenarioFrom('uas-fork-early-media.xml', {}, root), ['-p', String(firstPhone), '-t', 'u1', '-trace_logs'], root);
  const answering = startSipp(scenarioFrom('uas-fork-answer.xml', { ANSWER_MS: '3000' }, root), ['-p', String(secondPhone), '-t', 'u1', '-trace_logs'], root);
  const caller = homes.callAsync('alice', 'a', 'bob', 'uac-call-long.xml', { TALK_MS: '1500' });
  // Ringing: the phones' side and the other home's side of the call, and a pair more for the second branch.
  assert.ok(await eventually(() => media(homes.dirs.b).portsInUse === 6, 4_000, 50), `three RTP/RTCP pairs while both phones ring: ${JSON.stringify(media(homes.dirs.b))} ${JSON.stringify(homes.status(homes.dirs.b).sip?.registrar ?? {})}`);
  assert.ok(await eventually(() => media(homes.dirs.b).portsInUse === 4, 4_000, 50), `the cancelled branch's pair went back once the other answered: ${media(homes.dirs.b).portsInUse}`);
  const [earlyRun, answerRun, callerRun] = await Promise.all([early.done, answering.done, caller]);
  assert.equal(earlyRun.code, 0, earlyRun.errors);
  assert.equal(answerRun.code, 0, answerRun.errors);
  assert.equal(callerRun.code, 0, callerRun.errors);
  assert.notEqual(offeredPort(early), offeredPort(answering), 'each phone was offered its own anchor port');
  assert.ok(await eventually(() => media(homes.dirs.b).portsInUse === 0, 3_000), 'every port is back after the BYE');
  assert.equal(media(homes.dirs.a).portsInUse, 0);
});
