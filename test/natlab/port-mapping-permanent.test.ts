import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers/processes.js';
import { HAS_MINIUPNPD, LAB_PORT, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus, startOpenPeer, startPublicPeers, stopPeer } from './fixture.js';

/*
 * A home router that grants only permanent UPnP leases (issue 17), as many older routers do:
 * its firmware answers any AddPortMapping with a lease other than 0 with error 725
 * OnlyPermanentLeasesSupported, in front of the router's UPnP service (miniupnpd, whose forwards
 * are real iptables rules). The peer asks for an hour, hears 725, asks for a permanent lease,
 * gets its forward and is reachable; since a permanent lease never ends by itself, the peer
 * removes it when it stops.
 */
const SKIP = SKIP_WITHOUT_LAB || (HAS_MINIUPNPD ? false : 'miniupnpd (miniupnpd-iptables) and iptables-legacy are needed (.ci/run installs them)');
const { lab, root } = natlabFixture('k', 'p2psip-natlab-permanent-');
const status = peerStatus;



test('behind a router that grants only permanent UPnP leases (725), the peer asks for a permanent one, is reachable through it, and removes it when it stops', { skip: SKIP, timeout: 180_000 }, async () => {
  await startPublicPeers(lab, root);

  const home = lab.addHome('upnp', { permanentLeasesOnly: true });
  assert.ok(await eventually(() => lab.routerLog(home.router).includes('Port forwarding is now enabled'), 15_000), lab.routerLog(home.router));
  assert.ok(await eventually(() => lab.firmwareLog(home.router).includes('firmware listening'), 5_000), lab.firmwareLog(home.router));

  const forwarded = () => lab.forwards(home.router).includes(`--dport ${LAB_PORT} -j DNAT`);
  const dir = `${root}/home`;
  const peer = startOpenPeer(lab, home.ns, dir, home.host, ['--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`, '--port-mapping', 'upnp-igd']);
  assert.ok(await eventually(() => status(dir).state === 'joined', 20_000), `joined: ${lab.output(peer)}`);
  const portMapping = status(dir).nat.portMapping;
  console.log(`firmware: ${lab.firmwareLog(home.router).trim().split('\n').join('; ')}`);
  assert.match(lab.firmwareLog(home.router), /refused lease 3600: 725/, 'the peer asked for an hour first, and heard 725');
  assert.match(lab.firmwareLog(home.router), /granted a permanent lease/);
  assert.deepEqual([portMapping.mapping?.protocol, portMapping.mapping?.external, portMapping.mapping?.lifetimeSeconds], ['upnp-igd', `${home.wan}:${LAB_PORT}`, 0], JSON.stringify(portMapping));
  assert.ok(forwarded(), `the router forwards the port: ${lab.forwards(home.router)}`);
  // Reachable by anyone, as with any forward: no Attach needed first.
  assert.ok(await eventually(() => status(dir).nat.attachFirst === false, 10_000), JSON.stringify(status(dir).nat));

  await stopPeer(peer);
  assert.ok(await eventually(() => !forwarded(), 5_000), `a permanent lease is removed when the peer stops, or it would stay for good: ${lab.forwards(home.router)}`);
});
