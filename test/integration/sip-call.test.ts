import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';

/*
 * Calls between phones of one home, SIPp playing every phone: the home peer proxies (RFC 3261
 * s16) an answered call with its ACK and BYE along the recorded route, a busy callee's 486, an
 * unknown user's 404, a user with no phone on (480), a CANCEL while ringing, and a user with two
 * phones where both ring and the first to answer wins (the other is cancelled).
 */
const { root, running } = processLab('p2psip-sipcall-');

const domain = 'open.p2psip.lab';
const dir = `${root}/home`;
let sipPort = 0;
const phones: Record<string, number> = {};
const target = () => `127.0.0.1:${sipPort}`;
const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;

async function registerPhone(name: string, user: string): Promise<number> {
  const port = await freeUdpPort();
  const run = runSipp('register-digest.xml', target(), ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(port), '-t', 'u1'], root);
  assert.equal(run.code, 0, run.errors);
  phones[name] = port;
  return port;
}

function call(scenario: string, callee: string, extra: Record<string, string> = {}) {
  const file = Object.keys(extra).length ? scenarioFrom(scenario, extra, root) : scenario;
  return runSipp(file, target(), ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones.alice), '-t', 'u1'], root);
}

function phoneWaits(name: string, scenario: string, values: Record<string, string>) {
  return startSipp(scenarioFrom(scenario, values, root), ['-p', String(phones[name]), '-t', 'u1'], root);
}

test('a home with four users; alice, bob and two phones of dave register', { skip: SKIP_WITHOUT_SIPP }, async () => {
  sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort), '--sip-digest', 'MD5']));
  assert.ok(await eventually(() => sip()?.address === target(), 10_000));
  for (const user of ['alice', 'bob', 'carol', 'dave']) assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
  await registerPhone('alice', 'alice');
  await registerPhone('bob', 'bob');
  await registerPhone('dave1', 'dave');
  await registerPhone('dave2', 'dave');
  assert.equal(sip().bindings, 4);
});

test('alice calls bob: it rings, bob answers, the ACK and the BYE follow the recorded route', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = phoneWaits('bob', 'uas-answer.xml', { ANSWER_MS: '200' });
  const caller = call('uac-call.xml', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  assert.equal(sip().media.anchored, 0, '--media-anchor auto leaves two phones of one home talking directly');
});

test('the caller sends its ACK twice: the proxy gives both the same branch, and the callee takes the second for a retransmission (s16.11)', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = phoneWaits('bob', 'uas-answer.xml', { ANSWER_MS: '100' });
  const caller = call('uac-call-double-ack.xml', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, `the callee took the second ACK for a new request: ${callee.errors}`);
});

test("a busy callee's 486 reaches the caller", { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = phoneWaits('bob', 'uas-reject.xml', { STATUS: '486 Busy Here' });
  const caller = call('uac-rejected.xml', 'bob', { EXPECT: '486' });
  assert.equal(caller.code, 0, caller.errors);
  assert.equal((await bob.done).code, 0);
});

test('an unknown user gets 404; a user with no phone on gets 480', { skip: SKIP_WITHOUT_SIPP }, () => {
  const unknown = call('uac-rejected.xml', 'nobody', { EXPECT: '404' });
  assert.equal(unknown.code, 0, unknown.errors);
  const offline = call('uac-rejected.xml', 'carol', { EXPECT: '480' });
  assert.equal(offline.code, 0, offline.errors);
});

test('CANCEL while it rings: 200 for the CANCEL, 487 for the INVITE, at both ends', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = phoneWaits('bob', 'uas-ring-cancelled.xml', {});
  const caller = runSipp('uac-cancel.xml', target(), ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', 'bob', '-p', String(phones.alice), '-t', 'u1'], root);
  assert.equal(caller.code, 0, caller.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  assert.ok(sip().proxy.cancels >= 1);
});

test('a user with two phones: both ring, the first to answer wins and the other is cancelled', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const first = phoneWaits('dave1', 'uas-answer.xml', { ANSWER_MS: '400' });
  const second = phoneWaits('dave2', 'uas-ring-cancelled.xml', {});
  const forkedBefore = sip().proxy.forked;
  const caller = call('uac-call.xml', 'dave');
  assert.equal(caller.code, 0, caller.errors);
  const [answered, cancelled] = await Promise.all([first.done, second.done]);
  assert.equal(answered.code, 0, answered.errors);
  assert.equal(cancelled.code, 0, cancelled.errors);
  assert.equal(sip().proxy.forked, forkedBefore + 1);
});

test('a phone whose outbound proxy is the domain, or localhost, preloads a Route to it: the peer knows itself and delivers', { skip: SKIP_WITHOUT_SIPP }, async () => {
  for (const route of [`<sip:${domain};lr>`, `<sip:localhost:${sipPort};lr>`]) {
    const bob = phoneWaits('bob', 'uas-message.xml', {});
    const sent = call('uac-message-headers.xml', 'bob', { HEADERS: `Route: ${route}`, EXPECT: '200' });
    assert.equal(sent.code, 0, `${route}: ${sent.errors}`);
    assert.equal((await bob.done).code, 0);
  }
});

test('a REGISTER asking for an extension the peer lacks (Proxy-Require or Require) is answered 420 with Unsupported', { skip: SKIP_WITHOUT_SIPP }, () => {
  for (const header of ['Proxy-Require: foo', 'Require: foo']) {
    const file = scenarioFrom('uac-register-headers.xml', { HEADERS: header, EXPECT: '420' }, root);
    const run = runSipp(file, target(), ['-s', 'alice', '-set', 'domain', domain, '-p', String(phones.alice), '-t', 'u1'], root);
    assert.equal(run.code, 0, `${header}: ${run.errors}`);
  }
});

test('a user with two phones: one declines with 603, the other stops ringing (CANCEL) and the caller gets the 603', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const declining = phoneWaits('dave1', 'uas-reject.xml', { STATUS: '603 Decline' });
  const ringing = phoneWaits('dave2', 'uas-ring-cancelled.xml', {});
  const caller = call('uac-rejected.xml', 'dave', { EXPECT: '603' });
  assert.equal(caller.code, 0, caller.errors);
  const [declined, cancelled] = await Promise.all([declining.done, ringing.done]);
  assert.equal(declined.code, 0, declined.errors);
  assert.equal(cancelled.code, 0, `the other phone got its CANCEL: ${cancelled.errors}`);
});
