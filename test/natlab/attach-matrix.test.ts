import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { HAS_MINIUPNPD, type Home, LAB_PORT, PUBLIC_PEER, type RouterKind, SECOND_PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';

/*
 * RFC 6940 s6.5.1 Attach across real kernel NATs of every kind in the lab: two public peers on
 * the internet, and one peer in each home. Every pair of homes Attaches (candidates exchanged
 * through the overlay, then paced connectivity checks); the test prints the matrix of what each
 * pair got, a direct link or one through a relay, and how long it took to set up.
 */
const KINDS: RouterKind[] = ['full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'carrier', 'carrier', ...(HAS_MINIUPNPD ? ['upnp' as const] : [])];
const { lab, root, bundle: BUNDLE } = natlabFixture('x', 'p2psip-natlab-matrix-');

interface LabPeer {
  readonly label: string;
  readonly home: Home | undefined;
  readonly dir: string;
  nodeId: string;
  readonly output: () => string;
}

function status(peer: LabPeer): Record<string, any> {
  return peerStatus(peer.dir);
}

function startPeer(label: string, ns: string, host: string, home: Home | undefined, bootstrap: string | undefined): LabPeer {
  const dir = `${root}/${label}`;
  const args = [BUNDLE, 'start', '--data', dir, '--open', '--bind', host, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off', ...(process.env.LAB_VERBOSE ? ['--verbose'] : [])];
  if (bootstrap) args.push('--bootstrap', bootstrap);
  const child = lab.spawn(ns, process.execPath, args);
  return { label, home, dir, nodeId: '', output: () => lab.output(child) };
}

const EXPECTED_BEHAVIOR: Record<Exclude<RouterKind, 'openwrt'>, [string, string, boolean]> = {
  'full-cone': ['endpoint-independent', 'endpoint-independent', true],
  'address-restricted': ['endpoint-independent', 'address-dependent', false],
  'port-restricted': ['endpoint-independent', 'address-and-port-dependent', false],
  symmetric: ['endpoint-dependent', 'address-and-port-dependent', false],
  carrier: ['endpoint-independent', 'address-and-port-dependent', false],
  // With its port forwarded by the router, the peer is as reachable as behind a full cone.
  upnp: ['endpoint-independent', 'endpoint-independent', false],
};

/** Endpoint-independent mapping, and filtering that lets in a peer whose address it has sent to. */
function opensToAny(kind: RouterKind): boolean {
  return kind === 'full-cone' || kind === 'address-restricted' || kind === 'upnp';
}

/** Lets in anyone at all (a full cone, or a port the router forwards). */
function opensToAnyone(kind: RouterKind): boolean {
  return kind === 'full-cone' || kind === 'upnp';
}

test('every pair of homes behind every kind of NAT connects: directly where the NATs allow it, else through a relay', { skip: SKIP_WITHOUT_LAB, timeout: 240_000 }, async () => {
  lab.build();
  const first = startPeer('public-1', lab.internet, PUBLIC_PEER, undefined, undefined);
  assert.ok(await eventually(() => status(first).state === 'joined', 10_000), 'the first public peer runs');
  const second = startPeer('public-2', lab.internet, SECOND_PUBLIC_PEER, undefined, `${PUBLIC_PEER}:${LAB_PORT}`);
  // The second public peer answers RFC 5780's "change IP" for the first: it must be in the ring.
  assert.ok(await eventually(() => status(second).state === 'joined', 10_000), 'the second public peer runs');
  const homes = KINDS.map((kind) => lab.addHome(kind));
  // miniupnpd forwards only once its STUN check (against our public peer) says it can.
  for (const home of homes.filter((h) => h.kind === 'upnp')) assert.ok(await eventually(() => lab.routerLog(home.router).includes('Port forwarding is now enabled'), 15_000), lab.routerLog(home.router));
  const peers = homes.map((home, i) => startPeer(`${home.name}-${home.kind}-${i}`, home.ns, home.host, home, `${PUBLIC_PEER}:${LAB_PORT}`));
  const all = [first, second, ...peers];
  const joined = await eventually(() => all.every((p) => status(p).state === 'joined'), 30_000);
  if (!joined) for (const p of all) if (status(p).state !== 'joined') console.log(p.label, JSON.stringify(status(p).nat), p.output());
  assert.ok(joined, `all joined: ${all.map((p) => `${p.label}=${status(p).state}`).join(', ')}`);
  for (const p of all) p.nodeId = status(p).nodeId;
  // RFC 5780 behaviour discovery, as each home's status reports it.
  const found = peers.map((p) => ({ kind: p.home!.kind, ...status(p).nat.behavior }));
  console.log(`\nNAT behaviour discovered (RFC 5780):\n${found.map((b) => `${b.kind.padEnd(20)} mapping ${b.mapping}, filtering ${b.filtering}, hairpinning ${b.hairpinning}`).join('\n')}\n`);
  for (const b of found) assert.deepEqual([b.mapping, b.filtering, b.hairpinning], EXPECTED_BEHAVIOR[b.kind as Exclude<RouterKind, 'openwrt'>], `${b.kind} is recognised`);
  // A full cone lets anyone in: its peer is reachable like a public one and needs no Attach first.
  for (const p of peers) assert.equal(status(p).nat.attachFirst, !opensToAnyone(p.home!.kind), `${p.label} attach-first`);
  // Homes behind NATs find a relay by name and take an allocation (their relayed candidate).
  const filtering = peers.filter((p) => !opensToAnyone(p.home!.kind));
  const allocated = await eventually(() => filtering.every((p) => status(p).nat?.relay?.state === 'allocated'), 30_000);
  assert.ok(allocated, `relays: ${filtering.map((p) => `${p.label}=${JSON.stringify(status(p).nat?.relay)}`).join(', ')}`);

  const cells: { a: LabPeer; b: LabPeer; path: string; setupMs: number; remoteType: string }[] = [];
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) {
      const [a, b] = [peers[i], peers[j]];
      const result = runCli(['attach', b.nodeId, '--data', a.dir, '--json']);
      const report = result.code === 0 ? JSON.parse(result.stdout) : { path: 'FAILED', setupMs: NaN, remoteType: result.stderr.trim() };
      cells.push({ a, b, path: report.path, setupMs: report.setupMs, remoteType: report.remoteType });
    }
  }
  const width = 26;
  const pad = (text: string) => text.padEnd(width);
  const lines = [pad('') + peers.map((p) => pad(`${p.home!.name} ${p.home!.kind}`)).join('')];
  for (const a of peers) {
    const row = peers.map((b) => {
      if (a === b) return pad('-');
      const cell = cells.find((c) => (c.a === a && c.b === b) || (c.a === b && c.b === a))!;
      return pad(Number.isFinite(cell.setupMs) ? `${cell.path} ${cell.remoteType} ${Math.round(cell.setupMs)} ms` : cell.path);
    });
    lines.push(pad(`${a.home!.name} ${a.home!.kind}`) + row.join(''));
  }
  console.log(`\nAttach matrix (row Attaches to column):\n${lines.join('\n')}\n`);
  const failed = cells.filter((c) => c.path !== 'direct' && c.path !== 'relayed');
  if (failed.length && process.env.LAB_VERBOSE) for (const p of all) console.log(p.label, JSON.stringify(status(p).nat));
  assert.deepEqual(failed.map((c) => `${c.a.label}->${c.b.label}: ${c.remoteType}`), [], 'every pair connects');
  for (const c of cells) {
    if (opensToAny(c.a.home!.kind) || opensToAny(c.b.home!.kind)) assert.equal(c.path, 'direct', `${c.a.label} and ${c.b.label} connect directly`);
  }
});
