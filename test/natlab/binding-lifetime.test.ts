import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers/processes.js';
import { LAB_PORT, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';

/*
 * Keepalives that fit the NAT (RFC 5780 s4.6): a home router that forgets idle UDP bindings
 * after 10 s. The home's peer keeps links alive every 25 s until it has measured that, then
 * measures it (a binding survives 8 s of silence, not 16 s) and sends keepalives more often
 * than the router forgets.
 */
const UDP_TIMEOUT_SECONDS = 10;
const { lab, root, bundle: BUNDLE } = natlabFixture('k', 'p2psip-natlab-lifetime-');
const status = peerStatus;

test('behind a router that forgets idle bindings after 10 s, the peer measures the binding lifetime and keeps alive more often than that', { skip: SKIP_WITHOUT_LAB, timeout: 120_000 }, async () => {
  lab.build();
  const publicDir = `${root}/public`;
  lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', publicDir, '--open', '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off']);
  assert.ok(await eventually(() => status(publicDir).state === 'joined', 10_000));
  const home = lab.addHome('port-restricted', { udpTimeoutSeconds: UDP_TIMEOUT_SECONDS });
  const dir = `${root}/home`;
  lab.spawn(home.ns, process.execPath, [BUNDLE, 'start', '--data', dir, '--open', '--bind', home.host, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off', '--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  assert.ok(await eventually(() => status(dir).state === 'joined', 20_000));
  assert.equal(status(dir).nat.keepaliveMs, 25_000, 'the default until measured');
  assert.ok(await eventually(() => status(dir).nat.bindingLifetime !== null, 60_000, 1_000), 'measured within a minute');
  const { bindingLifetime, keepaliveMs } = status(dir).nat;
  console.log(`binding lifetime: survived ${bindingLifetime.survivedSeconds} s, expired by ${bindingLifetime.expiredBySeconds} s; keepalives every ${keepaliveMs} ms`);
  assert.ok(bindingLifetime.survivedSeconds < UDP_TIMEOUT_SECONDS && bindingLifetime.expiredBySeconds >= UDP_TIMEOUT_SECONDS, JSON.stringify(bindingLifetime));
  assert.ok(keepaliveMs < UDP_TIMEOUT_SECONDS * 1000, `keepalives every ${keepaliveMs} ms`);
  // The link to the public peer holds (keepalives fill any gap in the traffic longer than 6.4 s).
  await new Promise((resolve) => setTimeout(resolve, 2.5 * UDP_TIMEOUT_SECONDS * 1000));
  assert.equal(status(dir).counters.neighborFailures, 0);
  assert.ok(status(publicDir).predecessors.some((p: { id: string }) => p.id === status(dir).nodeId));
});
