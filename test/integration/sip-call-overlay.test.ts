import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli } from '../helpers/processes.js';
import { startTwoHomes } from '../helpers/sip-homes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';

/*
 * When homes have no direct path to each other (RFC 7904 s4 uses an AppAttach'd connection when
 * it can), SIP between them goes through the overlay: here both homes run with --sip-direct off,
 * so the INVITE, every response, the ACK and the BYE between them travel inside overlay
 * messages, sealed hop by hop; the phones see an ordinary call.
 */
const { root, running } = processLab('p2psip-sipoverlay-');
const domain = 'smiths.example';
const sipPorts: Record<string, number> = {};
const phones: Record<string, number> = {};
const dirs = { a: `${root}/a`, b: `${root}/b` };
const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);

async function registerPhone(user: string, home: 'a' | 'b'): Promise<void> {
  const port = await freeUdpPort();
  const run = runSipp('register-digest.xml', `127.0.0.1:${sipPorts[home]}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(port), '-t', 'u1'], root);
  assert.equal(run.code, 0, run.errors);
  phones[user] = port;
}

const call = (from: string, home: 'a' | 'b', callee: string, scenario = 'uac-call.xml', values: Record<string, string> = {}) =>
  runSipp(Object.keys(values).length ? scenarioFrom(scenario, values, root) : scenario, `127.0.0.1:${sipPorts[home]}`, ['-s', from, '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones[from]), '-t', 'u1'], root);
const waits = (user: string, scenario: string, values: Record<string, string>) => startSipp(scenarioFrom(scenario, values, root), ['-p', String(phones[user]), '-t', 'u1'], root);

test('two homes that send SIP to each other only through the overlay', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const homes = await startTwoHomes(root, running, domain, ['--sip-direct', 'off']);
  Object.assign(sipPorts, homes.sipPorts);
  assert.equal(runCli(['user', 'add', 'alice', '--password', 'alice-password', '--data', dirs.a]).code, 0);
  assert.equal(runCli(['user', 'add', 'bob', '--password', 'bob-password', '--data', dirs.b]).code, 0);
  await registerPhone('alice', 'a');
  await registerPhone('bob', 'b');
  assert.ok(await eventually(() => runCli(['lookup', `sip:bob@${domain}`, '--data', dirs.a]).code === 0 && runCli(['lookup', `sip:alice@${domain}`, '--data', dirs.b]).code === 0, 10_000));
});

test('alice calls bob through the overlay: rings, answered, ACK and BYE, all inside overlay messages between the homes', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = waits('bob', 'uas-answer.xml', { ANSWER_MS: '200' });
  const caller = call('alice', 'a', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  assert.equal((await bob.done).code, 0);
  // B got the INVITE, ACK and BYE through the overlay; A got B's responses the same way.
  assert.ok(status(dirs.b).sip.transport.overlayReceived >= 3, `B received ${status(dirs.b).sip.transport.overlayReceived}`);
  assert.ok(status(dirs.a).sip.transport.overlayReceived >= 3, `A received ${status(dirs.a).sip.transport.overlayReceived}`);
});

test('and back, and a busy 486 the same way', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const alice = waits('alice', 'uas-answer.xml', { ANSWER_MS: '100' });
  assert.equal(call('bob', 'b', 'alice').code, 0);
  assert.equal((await alice.done).code, 0);
  const bob = waits('bob', 'uas-reject.xml', { STATUS: '486 Busy Here' });
  const busy = call('alice', 'a', 'bob', 'uac-rejected.xml', { EXPECT: '486' });
  assert.equal(busy.code, 0, busy.errors);
  assert.equal((await bob.done).code, 0);
});
