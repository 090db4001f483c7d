import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';
import { startTwoHomes } from '../helpers/sip-homes.js';
import { SKIP_WITHOUT_BARESIP, startBaresip } from '../helpers/baresip.js';

/*
 * Calls between two homes across the overlay (RFC 7904 s4), SIPp as the phones: alice's phone
 * at peer A calls bob's phone at peer B. A finds bob's home through his SIP-REGISTRATION record
 * and AppAttach, proxies the INVITE there, B rings bob; answered, with ACK and BYE through both
 * proxies; and back the other way; a busy 486 and an unknown user's 404 across homes.
 */
const { root, running } = processLab('p2psip-homes-');

const domain = 'smiths.example';
const dirs = { a: `${root}/a`, b: `${root}/b` };
const sipPorts: Record<string, number> = {};
const phones: Record<string, number> = {};
const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);

async function registerPhone(user: string, home: 'a' | 'b'): Promise<void> {
  const port = await freeUdpPort();
  const run = runSipp('register-digest.xml', `127.0.0.1:${sipPorts[home]}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(port), '-t', 'u1'], root);
  assert.equal(run.code, 0, run.errors);
  phones[user] = port;
}

function call(from: string, home: 'a' | 'b', callee: string, scenario = 'uac-call.xml', values: Record<string, string> = {}) {
  const file = Object.keys(values).length ? scenarioFrom(scenario, values, root) : scenario;
  return runSipp(file, `127.0.0.1:${sipPorts[home]}`, ['-s', from, '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones[from]), '-t', 'u1'], root);
}

const waits = (user: string, scenario: string, values: Record<string, string>) => startSipp(scenarioFrom(scenario, values, root), ['-p', String(phones[user]), '-t', 'u1'], root);

test('two homes: A holds the authority and alice, B was enrolled as bob; each registers its phone', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const homes = await startTwoHomes(root, running, domain);
  Object.assign(sipPorts, homes.sipPorts);
  assert.equal(runCli(['user', 'add', 'alice', '--password', 'alice-password', '--data', dirs.a]).code, 0);
  assert.equal(runCli(['user', 'add', 'bob', '--password', 'bob-password', '--data', dirs.b]).code, 0);
  await registerPhone('alice', 'a');
  await registerPhone('bob', 'b');
  assert.ok(await eventually(() => runCli(['lookup', `sip:bob@${domain}`, '--data', dirs.a]).code === 0 && runCli(['lookup', `sip:alice@${domain}`, '--data', dirs.b]).code === 0, 10_000));
});

test("alice at home A calls bob at home B: found through the overlay, rings, answered, ACK and BYE through both homes", { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = waits('bob', 'uas-answer.xml', { ANSWER_MS: '200' });
  const caller = call('alice', 'a', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  assert.ok(status(dirs.a).sip.proxy.remoteLookups >= 1);
});

test('and back: bob calls alice', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const alice = waits('alice', 'uas-answer.xml', { ANSWER_MS: '100' });
  const caller = call('bob', 'b', 'alice');
  assert.equal(caller.code, 0, caller.errors);
  assert.equal((await alice.done).code, 0);
});

test("across homes a busy callee's 486 reaches the caller, and a user registered nowhere is 404", { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = waits('bob', 'uas-reject.xml', { STATUS: '486 Busy Here' });
  const busy = call('alice', 'a', 'bob', 'uac-rejected.xml', { EXPECT: '486' });
  assert.equal(busy.code, 0, busy.errors);
  assert.equal((await bob.done).code, 0);
  const nobody = call('alice', 'a', 'nobody', 'uac-rejected.xml', { EXPECT: '404' });
  assert.equal(nobody.code, 0, nobody.errors);
});

test('a text message (MESSAGE, RFC 3428) from alice reaches bob at the other home with its body', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = waits('bob', 'uas-message.xml', {});
  const sent = call('alice', 'a', 'bob', 'uac-message.xml');
  assert.equal(sent.code, 0, sent.errors);
  const received = await bob.done;
  assert.equal(received.code, 0, received.errors);
});

test('baresip as bob\'s phone: it registers with digest at home B, and alice at home A reaches it; it answers and the call ends with BYE', { skip: SKIP_WITHOUT_SIPP || SKIP_WITHOUT_BARESIP }, async () => {
  // bob's SIPp phone leaves, so the baresip softphone is the one his calls reach.
  const gone = runSipp('register-digest.xml', `127.0.0.1:${sipPorts.b}`, ['-s', 'bob', '-au', 'bob', '-ap', 'bob-password', '-set', 'domain', domain, '-set', 'expires', '0', '-p', String(phones.bob), '-t', 'u1'], root);
  assert.equal(gone.code, 0, gone.errors);
  const phone = startBaresip(`${root}/baresip`, { user: 'bob', domain, password: 'bob-password', proxyPort: sipPorts.b }, await freeUdpPort());
  running.push({ child: phone.child, output: [], exited: new Promise((resolve) => phone.child.once('exit', (code) => resolve(code))) });
  assert.ok(await eventually(() => /200 OK \(\) \[1 binding\]/.test(phone.output()), 10_000), `baresip registered: ${phone.output().slice(-500)}`);
  const caller = call('alice', 'a', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  assert.ok(await eventually(() => /Call established/.test(phone.output()) && /session closed/.test(phone.output()), 5_000), phone.output().slice(-800));
});
