import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';
import { type Home, LAB_PORT, PUBLIC_PEER, type RouterKind, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';

/*
 * SIP through real NATs (RFC 7904 over RFC 6940): in each home, a SIPp phone registers to its
 * home peer, which itself sits behind that home's router; then for every pair of home kinds one
 * phone calls the other. The caller's home finds the callee's home in the overlay and carries
 * the call there (over the link their Attach set up, direct or through a relay); the call is
 * answered, ACKed and ended with BYE.
 */
const KINDS: RouterKind[] = ['full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'carrier'];
const DOMAIN = 'natlab.example';
const SIP_PORT = 5060;
const PHONE_PORT = 5070;
const { lab, root, bundle: BUNDLE } = natlabFixture('s', 'p2psip-natlab-sip-');
const status = peerStatus;

test('a phone in every kind of home calls a phone in every other: answered and torn down across both NATs', { skip: SKIP_WITHOUT_LAB || SKIP_WITHOUT_SIPP, timeout: 300_000 }, async () => {
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
  const results: string[] = [];
  for (let i = 0; i < homes.length; i++) {
    for (let j = i + 1; j < homes.length; j++) {
      const [caller, callee] = [homes[i], homes[j]];
      const phone = startSipp(answer, ['-p', `${PHONE_PORT}`, '-t', 'u1'], root, 30, callee.home.ns);
      const started = Date.now();
      const call = runSipp('uac-call.xml', `${caller.home.host}:${SIP_PORT}`, ['-s', caller.user, '-set', 'domain', DOMAIN, '-set', 'callee', callee.user, '-p', `${PHONE_PORT}`, '-t', 'u1'], root, 25, caller.home.ns);
      const answered = await phone.done;
      const line = `${caller.home.kind} -> ${callee.home.kind}: ${call.code === 0 && answered.code === 0 ? 'answered and ended' : 'FAILED'} (${Date.now() - started} ms)`;
      results.push(line);
      assert.equal(call.code, 0, `${line}\ncaller: ${call.errors}\ncallee: ${answered.errors}`);
      assert.equal(answered.code, 0, `${line}\n${answered.errors}`);
    }
  }
  console.log(`\nSIP calls through the NAT lab:\n${results.join('\n')}\n`);
  // Every home is behind a NAT, so the calls went home to home through the overlay's links.
  const received = homes.map((h) => status(h.dir).sip?.transport?.overlayReceived ?? 0);
  assert.ok(received.every((n) => n > 0), `each home received SIP through the overlay: ${received.join(', ')}`);
});
