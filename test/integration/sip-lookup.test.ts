import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli } from '../helpers/processes.js';
import { runSipp, SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';
import { startTwoHomes } from '../helpers/sip-homes.js';

/*
 * The overlay binding (RFC 7904 s3): a phone registering at its home peer puts a signed
 * SIP-REGISTRATION record under H(AOR) that points at that peer; any peer's `lookup` finds it,
 * and it goes away when the last phone un-registers. Two enrolled homes, SIPp as the phones.
 */
const { root, running } = processLab('p2psip-siplookup-');

const domain = 'smiths.example';
const dirs = { a: `${root}/a`, b: `${root}/b` };
const sipPorts: Record<string, number> = {};
const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
const lookup = (aor: string, dir: string) => runCli(['lookup', aor, '--data', dir, '--json']);
const register = async (user: string, password: string, home: 'a' | 'b', expires: number, localPort?: number) =>
  runSipp('register-digest.xml', `127.0.0.1:${sipPorts[home]}`, ['-s', user, '-au', user, '-ap', password, '-set', 'domain', domain, '-set', 'expires', String(expires), '-p', String(localPort ?? (await freeUdpPort())), '-t', 'u1'], root);

test('two homes with SIP: the authority peer and a device enrolled as bob', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const homes = await startTwoHomes(root, running, domain);
  Object.assign(sipPorts, homes.sipPorts);
  assert.equal(runCli(['user', 'add', 'alice', '--password', 'alice-secret', '--data', dirs.a]).code, 0);
  assert.equal(runCli(['user', 'add', 'bob', '--password', 'bob-secret', '--data', dirs.b]).code, 0);
});

let alicePort = 0;
test('a REGISTER stores a signed SIP-REGISTRATION that any peer finds with lookup', { skip: SKIP_WITHOUT_SIPP }, async () => {
  alicePort = await freeUdpPort();
  assert.equal((await register('alice', 'alice-secret', 'a', 3600, alicePort)).code, 0);
  assert.equal((await register('bob', 'bob-secret', 'b', 3600)).code, 0);
  const aId = status(dirs.a).nodeId;
  const bId = status(dirs.b).nodeId;
  assert.ok(await eventually(() => lookup(`sip:alice@${domain}`, dirs.b).code === 0, 10_000), 'alice is found from the other home');
  const alice = JSON.parse(lookup(`sip:alice@${domain}`, dirs.b).stdout);
  assert.equal(alice.registrations.length, 1);
  assert.deepEqual(alice.registrations[0].destinations, [aId], 'it points at her home peer');
  assert.equal(alice.registrations[0].signer, `alice@${domain}`, 'signed with her own certificate');
  assert.ok(alice.registrations[0].expiresInSeconds > 3000);
  assert.equal(alice.rejected, 0);
  assert.deepEqual(alice.local, [], 'her phones are not at bob\'s home');
  const atHome = JSON.parse(lookup(`sip:alice@${domain}`, dirs.a).stdout);
  assert.equal(atHome.local.length, 1);
  assert.equal(atHome.local[0].transport, 'UDP');
  const bob = JSON.parse(lookup(`sip:bob@${domain}`, dirs.a).stdout);
  for (const name of ['bob', `bob@${domain}`]) {
    const same = JSON.parse(lookup(name, dirs.a).stdout);
    assert.deepEqual([same.aor, same.resourceId, same.registrations[0].destinations], [bob.aor, bob.resourceId, bob.registrations[0].destinations], `lookup ${name}: a bare name is this home's user`);
  }
  assert.deepEqual(bob.registrations[0].destinations, [bId]);
  assert.equal(bob.registrations[0].signer, `bob@${domain}`, "bob's device signs with its own certificate");
  assert.equal(status(dirs.a).sip.overlay.published, 1);
});

test('when her last phone un-registers, the record is removed; unknown users are not found', { skip: SKIP_WITHOUT_SIPP }, async () => {
  assert.equal((await register('alice', 'alice-secret', 'a', 0, alicePort)).code, 0);
  assert.ok(await eventually(() => lookup(`sip:alice@${domain}`, dirs.b).code === 1, 10_000), 'gone from the overlay');
  assert.equal(status(dirs.a).sip.overlay.removed, 1);
  const nobody = lookup(`sip:nobody@${domain}`, dirs.a);
  assert.equal(nobody.code, 1);
  assert.deepEqual(JSON.parse(nobody.stdout).registrations, []);
  assert.equal(runCli(['lookup', 'not a uri', '--data', dirs.a]).code, 2);
});
