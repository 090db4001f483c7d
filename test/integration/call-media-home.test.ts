import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';

/*
 * `--media-anchor always`: a call between two phones of one home goes through the home peer's
 * anchor too. SIPp phones check that each is told only the anchor's ports, through a hold and a
 * resume by re-INVITE from the caller; the ports are freed after the BYE.
 */
const { root, running } = processLab('p2psip-media-home-');
const domain = 'open.p2psip.lab';
const dir = `${root}/home`;
const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;

test('with --media-anchor always, alice holds and resumes a call to bob at the same home, every SDP naming the anchor', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort), '--sip-digest', 'MD5', '--media-anchor', 'always']));
  assert.ok(await eventually(() => sip()?.media?.mode === 'always', 10_000), 'the peer runs, anchoring every call');
  const phones: Record<string, number> = {};
  for (const user of ['alice', 'bob']) {
    assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
    phones[user] = await freeUdpPort();
    const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(phones[user]), '-t', 'u1'], root);
    assert.equal(run.code, 0, run.errors);
  }
  const bob = startSipp(scenarioFrom('uas-hold.xml', {}, root), ['-p', String(phones.bob), '-t', 'u1'], root);
  const alice = runSipp('uac-hold.xml', `127.0.0.1:${sipPort}`, ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', 'bob', '-p', String(phones.alice), '-t', 'u1'], root);
  assert.equal(alice.code, 0, alice.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  const media = sip().media;
  assert.equal(media.anchored, 1, 'the call was anchored');
  assert.equal(media.active, 0);
  assert.equal(media.portsInUse, 0, 'the BYE freed its ports');
});
