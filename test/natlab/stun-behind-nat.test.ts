import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { eventually } from '../helpers/processes.js';
import { natlabFixture, peerStatus } from './fixture.js';
import { PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';

/*
 * Real kernel NAT: a home behind a MASQUERADE router asks the public peer on the "internet" for
 * its address with STUN (RFC 8489) on the overlay port, and learns the router's WAN address and
 * the port the NAT chose, not its own private one. The internet has no route to the home at all.
 */
const { lab, root, bundle } = natlabFixture('t', 'p2psip-natlab-');

test('a home behind a MASQUERADE router learns its public (server-reflexive) address from the public peer', { skip: SKIP_WITHOUT_LAB }, async () => {
  const home = lab.addHome('port-restricted');
  const dir = `${root}/public`;
  lab.spawn(lab.internet, process.execPath, [bundle, 'start', '--data', dir, '--open', '--bind', PUBLIC_PEER, '--overlay-port', '6084', '--sip-port', 'off']);
  assert.ok(await eventually(() => peerStatus(dir).state === 'joined', 10_000), 'the public peer runs');
  // No way in: the internet does not know the home's network.
  assert.throws(() => lab.in(lab.internet, 'ip', ['route', 'get', home.host]));
  const hasStunClient = spawnSync('turnutils_stunclient', [], { encoding: 'utf8' }).error === undefined;
  assert.ok(hasStunClient, 'coturn provides the STUN client (.ci/run installs it)');
  const out = lab.in(home.ns, 'turnutils_stunclient', ['-p', '6084', PUBLIC_PEER]);
  const match = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(out);
  assert.ok(match, out);
  assert.equal(match![1], home.wan, 'the address the NAT put on the packets, not the home\'s own');
  assert.notEqual(match![1], home.host);
  assert.ok(peerStatus(dir).stun.bindingsAnswered >= 1);
});
