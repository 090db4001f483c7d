import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';

/*
 * SIP transports as phones use them (RFC 3261 s18, RFC 5626): an INVITE with 2 KB of SDP (video,
 * ICE candidates: what rich phones send) reaches a phone registered over TCP, on the connection
 * it registered over, and one registered over UDP; a phone whose TCP connection is gone is
 * answered 480 at once (its flow failed; the binding is dropped) instead of ringing nowhere.
 */
const { root, running } = processLab('p2psip-siptransports-');
const domain = 'open.p2psip.lab';
const dir = `${root}/home`;
let sipPort = 0;
const phones: Record<string, number> = {};
const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;

/** uac-call.xml with about 2 KB more SDP: many attribute lines, as a phone offering video and ICE writes. */
function bigCall(): string {
  const extra = Array.from({ length: 40 }, (_, i) => `      a=candidate:${i} 1 UDP ${2130706431 - i} 192.0.2.${i + 1} ${50000 + i} typ host`).join('\n');
  const text = readFileSync(path.resolve('test/integration/sipp/uac-call.xml'), 'utf8').replace('      a=rtpmap:0 PCMU/8000\n', `      a=rtpmap:0 PCMU/8000\n${extra}\n`);
  const file = path.join(root, 'uac-call-big.xml');
  writeFileSync(file, text);
  return file;
}

function call(callee: string, scenario: string, timeoutSeconds = 20) {
  return runSipp(scenario, `127.0.0.1:${sipPort}`, ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones.alice), '-t', 'u1'], root, timeoutSeconds);
}

test('a home with alice and bob on UDP phones', { skip: SKIP_WITHOUT_SIPP }, async () => {
  sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort)]));
  assert.ok(await eventually(() => sip()?.address === `127.0.0.1:${sipPort}`, 10_000));
  for (const user of ['alice', 'bob', 'carol']) assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
  for (const user of ['alice', 'bob']) {
    phones[user] = await freeUdpPort();
    const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(phones[user]), '-t', 'u1'], root);
    assert.equal(run.code, 0, run.errors);
  }
});

test('an INVITE with 2 KB of SDP reaches a phone registered over UDP, and one registered over TCP on its own connection', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const big = bigCall();
  assert.ok(readFileSync(big, 'utf8').length > 2500);
  const bob = startSipp(scenarioFrom('uas-answer.xml', { ANSWER_MS: '100' }, root), ['-p', String(phones.bob), '-t', 'u1'], root);
  const toUdp = call('bob', big);
  assert.equal(toUdp.code, 0, toUdp.errors);
  assert.equal((await bob.done).code, 0);

  // carol's phone registers over TCP and stays up, answering calls that come in on that connection.
  const answer = scenarioFrom('uas-answer.xml', { ANSWER_MS: '100' }, root);
  const carol = startSipp(scenarioFrom('register-and-wait.xml', { HOLD_MS: '8000' }, root), [`127.0.0.1:${sipPort}`, '-s', 'carol', '-au', 'carol', '-ap', 'carol-password', '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(await freeUdpPort()), '-t', 't1', '-oocsf', answer], root);
  assert.ok(await eventually(() => sip().bindings === 3, 5_000, 100), 'carol registered over TCP');
  const tcpBefore = sip().transport.tcpReceived;
  const toTcp = call('carol', big);
  assert.equal(toTcp.code, 0, toTcp.errors);
  assert.ok(sip().transport.tcpReceived > tcpBefore, 'the call went over carol\'s connection');
  assert.equal((await carol.done).code, 0, 'carol\'s phone ran to its end');
});

test('a phone whose TCP connection has closed: the caller gets 480 at once and the dead binding is gone', { skip: SKIP_WITHOUT_SIPP }, () => {
  assert.equal(sip().bindings, 3, 'carol\'s binding outlived her connection');
  const started = Date.now();
  const caller = runSipp(scenarioFrom('uac-rejected.xml', { EXPECT: '480' }, root), `127.0.0.1:${sipPort}`, ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', 'carol', '-p', String(phones.alice), '-t', 'u1'], root);
  assert.equal(caller.code, 0, caller.errors);
  assert.ok(Date.now() - started < 5_000);
  assert.equal(sip().bindings, 2);
});
