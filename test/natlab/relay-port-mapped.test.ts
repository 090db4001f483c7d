import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { HAS_MINIUPNPD, LAB_PORT, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, startOpenPeer, startPublicPeers, stopPeer } from './fixture.js';

/*
 * A port-mapped home relays (issue 17): the only relay in this overlay is the peer of a home
 * whose router (miniupnpd) forwards its port; the public peers do not relay. A symmetric-NAT home
 * and a port-restricted one take their allocations on it; the router forwards each relayed port
 * (a forward of its own per allocation, asked for the way the overlay port's was), the relay
 * announces its router's address, and the two homes, which can reach each other no other way,
 * connect through it. Allocations that end take their forwards with them.
 */
const SKIP = SKIP_WITHOUT_LAB || (HAS_MINIUPNPD ? false : 'miniupnpd (miniupnpd-iptables) and iptables-legacy are needed (.ci/run installs them)');
const { lab, root } = natlabFixture('q', 'p2psip-natlab-mapped-relay-');
const status = peerStatus;



test('a home whose router forwards its ports relays for a symmetric-NAT home: each relayed port gets a forward of its own, and goes with its allocation', { skip: SKIP, timeout: 240_000 }, async () => {
  await startPublicPeers(lab, root, ['--relay', 'off']);

  const upnp = lab.addHome('upnp');
  const symmetric = lab.addHome('symmetric');
  const restricted = lab.addHome('port-restricted');
  assert.ok(await eventually(() => lab.routerLog(upnp.router).includes('Port forwarding is now enabled'), 15_000), lab.routerLog(upnp.router));

  // The relay: joins, gets its overlay port forwarded, and announces the router's address under RELAY-SERVICE.
  const relayDir = `${root}/relay-home`;
  const relay = startOpenPeer(lab, upnp.ns, relayDir, upnp.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  const announced = await eventually(() => (status(relayDir).nat?.relayAnnouncements?.stored ?? 0) > 0, 30_000);
  assert.ok(announced, `the port-mapped home announces itself as a relay: ${JSON.stringify(status(relayDir).nat)} ${lab.output(relay)}`);
  assert.equal(status(relayDir).nat.relaying, `${upnp.wan}:${LAB_PORT}`, 'announced at the router forward, not its LAN address');

  const symmetricDir = `${root}/symmetric-home`;
  const restrictedDir = `${root}/restricted-home`;
  const symmetricPeer = startOpenPeer(lab, symmetric.ns, symmetricDir, symmetric.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  startOpenPeer(lab, restricted.ns, restrictedDir, restricted.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  const relayedOn = (dir: string) => status(dir).nat?.relay;
  const allocated = await eventually(() => [symmetricDir, restrictedDir].every((d) => relayedOn(d)?.state === 'allocated' && relayedOn(d)?.server === `${upnp.wan}:${LAB_PORT}`), 60_000, 1000);
  assert.ok(allocated, `both homes hold an allocation on the port-mapped relay: ${JSON.stringify(relayedOn(symmetricDir))} ${JSON.stringify(relayedOn(restrictedDir))}`);

  // Each relayed address is on the router's WAN address, and the router forwards exactly that port.
  const relayedPort = (dir: string) => {
    const [host, port] = String(relayedOn(dir).relayed).split(':');
    assert.equal(host, upnp.wan, `${dir}: relayed at the router's address`);
    return Number(port);
  };
  const forwarded = (port: number) => lab.forwards(upnp.router).includes(`--dport ${port} -j DNAT`);
  const symmetricPort = relayedPort(symmetricDir);
  const restrictedPort = relayedPort(restrictedDir);
  assert.ok(forwarded(symmetricPort) && forwarded(restrictedPort), `the router forwards both relayed ports: ${lab.forwards(upnp.router)}`);

  // The two homes can reach each other only through the relay: an Attach goes through it.
  const symmetricId = status(symmetricDir).nodeId;
  const relayedBefore = status(relayDir).nat.relayServer.relayedToPeers;
  // (An Attach goes to the node responsible for the ID: until the ring has taken the new homes in,
  // that can be another, so it is asked again until the symmetric home itself answers.)
  let report: Record<string, any> = {};
  await eventually(() => {
    const attach = runCli(['attach', symmetricId, '--data', restrictedDir, '--json']);
    report = attach.code === 0 ? JSON.parse(attach.stdout) : { error: attach.stderr };
    return report.nodeId === symmetricId;
  }, 30_000, 1000);
  assert.equal(report.nodeId, symmetricId, JSON.stringify(report));
  console.log(`port-restricted -> symmetric through the port-mapped relay: ${report.path} ${report.remoteType} in ${Math.round(report.setupMs)} ms`);
  // One side's relayed candidate carries it: ours (path) or theirs (remoteType).
  assert.ok(report.path === 'relayed' || report.remoteType === 'relay', JSON.stringify(report));
  assert.ok(status(relayDir).nat.relayServer.relayedToPeers > relayedBefore, 'the checks crossed the relay');

  // The symmetric home leaves: its allocation ends, and its forward with it; the other stays.
  await stopPeer(symmetricPeer);
  assert.ok(await eventually(() => !forwarded(symmetricPort), 10_000), `the ended allocation's forward is removed: ${lab.forwards(upnp.router)} ${JSON.stringify(status(relayDir).nat.relayServer)} ${lab.output(symmetricPeer).slice(-3000)}`);
  assert.ok(forwarded(restrictedPort), 'the other allocation keeps its forward');
  // The relay stops: every forward it asked for goes.
  await stopPeer(relay);
  assert.ok(await eventually(() => !forwarded(restrictedPort) && !forwarded(LAB_PORT), 10_000), `all forwards removed: ${lab.forwards(upnp.router)}`);
});
