import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers/processes.js';
import { HAS_MINIUPNPD, LAB_PORT, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, startOpenPeer, startPublicPeers, stopPeer } from './fixture.js';

/*
 * Port mapping on a real home router: miniupnpd (Debian's, speaking PCP, NAT-PMP and UPnP IGD)
 * runs as the router of one lab home. The home's peer asks it to forward its overlay port with
 * each protocol in turn, PCP first by default; the router's own rules show the forward, the
 * peer becomes reachable by anyone (no Attach needed), and the forward is gone when it stops.
 */
const SKIP = SKIP_WITHOUT_LAB || (HAS_MINIUPNPD ? false : 'miniupnpd (miniupnpd-iptables) and iptables-legacy are needed (.ci/run installs them)');
const { lab, root } = natlabFixture('m', 'p2psip-natlab-upnp-');
const status = peerStatus;

/** A STUN Binding request from a port nobody behind the NAT ever talked to (argv: host, port). */
const STRANGER_BINDING = `
const socket = require('node:dgram').createSocket('udp4');
const timer = setTimeout(() => { console.log('silent'); process.exit(0); }, 2000);
socket.on('message', () => { clearTimeout(timer); console.log('answered'); process.exit(0); });
socket.bind(0, '198.18.0.2', () => {
  const request = Buffer.concat([Buffer.from('000100002112a442', 'hex'), require('node:crypto').randomBytes(12)]);
  socket.send(request, Number(process.argv[2]), process.argv[1]);
});`;



test('a peer behind a miniupnpd router gets its port forwarded by PCP, NAT-PMP or UPnP IGD, is reachable by anyone, and removes the forward when it stops', { skip: SKIP, timeout: 300_000 }, async () => {
  await startPublicPeers(lab, root);

  // miniupnpd checks with our public peer's STUN (RFC 5780 CHANGE-REQUEST) that it can forward.
  const home = lab.addHome('upnp');
  assert.ok(await eventually(() => lab.routerLog(home.router).includes('Port forwarding is now enabled'), 15_000), lab.routerLog(home.router));

  // (iptables 1.8.9 cannot print the target revision miniupnpd writes, so the rule is matched by its port.)
  const forwarded = () => lab.forwards(home.router).includes(`--dport ${LAB_PORT} -j DNAT`);
  const dir = `${root}/home`;
  for (const protocol of ['on', 'nat-pmp', 'upnp-igd'] as const) {
    const started = Date.now();
    const peer = startOpenPeer(lab, home.ns, dir, home.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`, '--port-mapping', protocol, '--verbose']);
    const joined = await eventually(() => status(dir).state === 'joined', 20_000);
    // What the ring thought of the home, should it not get in.
    if (!joined) for (const d of [`${root}/public-1`, `${root}/public-2`, dir]) console.log(d, JSON.stringify(status(d)));
    assert.ok(joined, `joined with --port-mapping ${protocol}: ${lab.output(peer)}`);
    console.log(`--port-mapping ${protocol}: joined after ${Date.now() - started} ms`);
    const nat = status(dir).nat;
    const expected = protocol === 'on' ? 'pcp' : protocol;
    assert.equal(nat.portMapping.mapping?.protocol, expected, JSON.stringify(nat.portMapping));
    assert.equal(nat.portMapping.mapping.external, `${home.wan}:${LAB_PORT}`);
    assert.ok(forwarded(), `the router forwards ${home.wan}:${LAB_PORT}: ${lab.forwards(home.router)}`);
    // A forwarded port makes the home reachable like a public peer: no Attach needed first.
    assert.equal(nat.attachFirst, false);
    assert.deepEqual([nat.behavior?.mapping, nat.behavior?.filtering], ['endpoint-independent', 'endpoint-independent']);
    // Anyone can reach it now: a STUN Binding from the internet, unasked, gets an answer.
    const answered = status(dir).stun.bindingsAnswered;
    const stranger = lab.in(lab.internet, process.execPath, ['-e', STRANGER_BINDING, home.wan, `${LAB_PORT}`]);
    assert.match(stranger, /^answered/, 'a stranger on the internet reached the home peer through the forward');
    assert.ok(status(dir).stun.bindingsAnswered > answered);
    await stopPeer(peer);
    assert.ok(await eventually(() => !forwarded(), 5_000), `the forward is removed on shutdown (${protocol}): ${lab.forwards(home.router)}`);
  }

  // The router reboots while the peer holds its mapping: the forward is gone with it, and the
  // peer's next renewal (within a minute) asks for it again; strangers reach the peer again.
  const peer = startOpenPeer(lab, home.ns, dir, home.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  assert.ok(await eventually(() => status(dir).state === 'joined' && forwarded(), 20_000), `mapped again: ${lab.output(peer)}`);
  const reboots = status(dir).nat.portMapping.routerReboots ?? 0;
  await lab.rebootRouter(home);
  const rebootedAt = Date.now();
  assert.ok(!forwarded(), 'the reboot took the forward with it');
  // Within one renewal interval: a minute (port-mapper.ts RENEW_AT_MOST_MS), and a little slack.
  const back = await eventually(() => forwarded(), 70_000, 1000);
  const backAfterMs = Date.now() - rebootedAt;
  console.log(`router rebooted: the forward was back after ${backAfterMs} ms; ${JSON.stringify(status(dir).nat.portMapping)}`);
  assert.ok(back, `the forward is back within a minute: ${lab.routerLog(home.router)}`);
  assert.match(lab.in(lab.internet, process.execPath, ['-e', STRANGER_BINDING, home.wan, `${LAB_PORT}`]), /^answered/, 'a stranger reaches the peer again');
  // (Whether miniupnpd's epoch shows the reboot is up to it: the renewal brings the forward back either way.)
  console.log(`reboots the peer saw in the router's epoch: ${(status(dir).nat.portMapping.routerReboots ?? 0) - reboots}`);
  await stopPeer(peer);
});
