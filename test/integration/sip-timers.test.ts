import assert from 'node:assert/strict';
import { test } from 'node:test';
import { processLab } from '../helpers/processes.js';
import { SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';
import { homeWithAliceAndBob } from '../helpers/sip-homes.js';

/*
 * The proxy's INVITE timers as real phones meet them (RFC 3261 s17.1.1.2, s16.6 step 11, s16.8):
 * a phone may ring for as long as its user takes to answer (Timer B stops at the first
 * provisional response; it used to end every call that rang past 32 s with a made-up 408), and
 * only Timer C ends a branch that rings for ever, with a CANCEL to the phone and a 408 to the
 * caller. SIPp plays every phone. The second home runs Timer C at 6 s (`--sip-timer-c`) so the
 * test does not wait three minutes.
 */
const { root, running } = processLab('p2psip-siptimers-');
const domain = 'open.p2psip.lab';

const home = (name: string, extra: string[]) => homeWithAliceAndBob(root, running, domain, name, extra);

test('a phone that rings for 60 s and then answers: the call completes, answered', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const h = await home('patient', []);
  const bob = h.bobWaits('uas-answer.xml', { ANSWER_MS: '60000' }, 90);
  const started = Date.now();
  const caller = h.call('uac-call.xml', {}, 90);
  assert.equal(caller.code, 0, caller.errors);
  assert.ok(Date.now() - started >= 60_000, 'the answer came after a minute of ringing');
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
});

test('a phone that rings for ever: Timer C cancels it (the phone gets a CANCEL) and the caller gets 408', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const h = await home('hasty', ['--sip-timer-c', '6']);
  const bob = h.bobWaits('uas-ring-cancelled.xml', {}, 30);
  const started = Date.now();
  const caller = h.call('uac-rejected.xml', { EXPECT: '408' }, 30);
  assert.equal(caller.code, 0, caller.errors);
  const took = Date.now() - started;
  assert.ok(took >= 5_500 && took < 15_000, `ended by Timer C after ${took} ms`);
  const callee = await bob.done;
  assert.equal(callee.code, 0, `the ringing phone got its CANCEL: ${callee.errors}`);
});
