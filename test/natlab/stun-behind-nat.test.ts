import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { ensureBundle, eventually, removeDir, runCli, tempDir } from '../helpers/processes.js';
import { NatLab, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';

/*
 * Real kernel NAT: a home behind a MASQUERADE router asks the public peer on the "internet" for
 * its address with STUN (RFC 8489) on the overlay port, and learns the router's WAN address and
 * the port the NAT chose, not its own private one. The internet has no route to the home at all.
 */
ensureBundle();
const lab = new NatLab();
const root = tempDir('p2psip-natlab-');
after(async () => {
  await lab.teardown();
  removeDir(root);
});

test('a home behind a MASQUERADE router learns its public (server-reflexive) address from the public peer', { skip: SKIP_WITHOUT_LAB }, async () => {
  const home = lab.addHome('port-restricted');
  const dir = `${root}/public`;
  lab.spawn(lab.internet, process.execPath, [path.resolve('dist/p2psip.js'), 'start', '--data', dir, '--open', '--bind', PUBLIC_PEER, '--overlay-port', '6084', '--sip-port', 'off']);
  assert.ok(await eventually(() => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).state === 'joined', 10_000), 'the public peer runs');
  // No way in: the internet does not know the home's network.
  assert.throws(() => lab.in(lab.internet, 'ip', ['route', 'get', home.host]));
  const hasStunClient = spawnSync('turnutils_stunclient', [], { encoding: 'utf8' }).error === undefined;
  assert.ok(hasStunClient, 'coturn provides the STUN client (.ci/run installs it)');
  const out = lab.in(home.ns, 'turnutils_stunclient', ['-p', '6084', PUBLIC_PEER]);
  const match = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(out);
  assert.ok(match, out);
  assert.equal(match![1], home.wan, 'the address the NAT put on the packets, not the home\'s own');
  assert.notEqual(match![1], home.host);
  assert.ok(JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).stun.bindingsAnswered >= 1);
});
