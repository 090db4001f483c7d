import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after } from 'node:test';
import { type Softphone, startBaresip } from '../helpers/baresip.js';
import { BUNDLE, ensureBundle, eventually, removeDir, runCli, tempDir } from '../helpers/processes.js';
import { type Home, LAB_PORT, NatLab, PUBLIC_PEER, type RouterKind, SECOND_PUBLIC_PEER } from './lab.js';

/** A NAT lab and a scratch directory for one test file, both gone when the file's tests end. */
export function natlabFixture(tag: string, prefix: string): { lab: NatLab; root: string; bundle: string } {
  ensureBundle();
  const lab = new NatLab(`${process.pid}${tag}`);
  const root = tempDir(prefix);
  after(async () => {
    await lab.teardown();
    removeDir(root);
  });
  return { lab, root, bundle: BUNDLE };
}

/** An open-mode peer (no enrollment) in `ns`, bound to `bind` on the lab's overlay port, with no SIP. */
export function startOpenPeer(lab: NatLab, ns: string, dir: string, bind: string, extra: readonly string[] = []): ChildProcess {
  return lab.spawn(ns, process.execPath, [BUNDLE, 'start', '--data', dir, '--open', '--bind', bind, '--overlay-port', `${LAB_PORT}`, '--sip-port', 'off', ...(process.env.LAB_VERBOSE ? ['--verbose'] : []), ...extra]);
}

/** Stops a peer as a service manager does (SIGTERM) and waits for it to be gone. */
export function stopPeer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** The two open-mode public peers on the internet (the second answers RFC 5780's change-IP), both in the ring. */
export async function startPublicPeers(lab: NatLab, root: string, extra: readonly string[] = []): Promise<void> {
  lab.build();
  const first = `${root}/public-1`;
  const second = `${root}/public-2`;
  startOpenPeer(lab, lab.internet, first, PUBLIC_PEER, extra);
  assert.ok(await eventually(() => peerStatus(first).state === 'joined', 10_000), 'the first public peer runs');
  startOpenPeer(lab, lab.internet, second, SECOND_PUBLIC_PEER, [...extra, '--bootstrap', `${PUBLIC_PEER}:${LAB_PORT}`]);
  assert.ok(await eventually(() => peerStatus(second).state === 'joined' && (peerStatus(first).successors ?? []).length > 0, 15_000), 'both public peers in the ring');
}

/** A running peer's `status --json`, or {} while it does not answer yet. */
export function peerStatus(dir: string): Record<string, any> {
  const result = runCli(['status', '--data', dir, '--json']);
  return result.code === 0 ? JSON.parse(result.stdout) : {};
}

/** A home of the lab with its peer joined, one user, and that user's baresip phone on its own LAN host. */
export interface PhoneHome {
  readonly home: Home;
  readonly dir: string;
  readonly user: string;
  readonly toneHz: number;
  readonly phone: Softphone & { recordings: string };
  /** The home peer's process. */
  readonly peer: ChildProcess;
}

/**
 * Builds a home of this kind (a miniupnpd home once its router forwards), has its peer join with a fresh invitation from `authority` (one for
 * `user`), adds the user, and starts a baresip phone on a LAN host of its own that plays `toneHz`
 * and records what it hears. The phone is not yet registered when this returns.
 */
export async function phoneHome(lab: NatLab, root: string, authority: string, kind: RouterKind, options: { domain: string; toneHz: number; sipPort: number; phonePort: number }): Promise<PhoneHome> {
  const home = lab.addHome(kind);
  // miniupnpd forwards only once its STUN check (against the public peer) says it can.
  if (kind === 'upnp') assert.ok(await eventually(() => lab.routerLog(home.router).includes('Port forwarding is now enabled'), 15_000), lab.routerLog(home.router));
  const phoneHost = lab.addPhone(home);
  const user = `u${home.name}`;
  const dir = `${root}/${home.name}`;
  const token = JSON.parse(runCli(['invite', '--data', authority, '--user', user, '--json']).stdout).token;
  const peer = lab.spawn(home.peerNs, process.execPath, [BUNDLE, 'join', token, '--data', dir, '--bind', home.peerHost, '--overlay-port', `${LAB_PORT}`, '--sip-port', `${options.sipPort}`, '--sip-digest', 'MD5', ...home.peerFlags, ...(process.env.LAB_VERBOSE ? ['--verbose'] : [])]);
  assert.ok(await eventually(() => peerStatus(dir).state === 'joined', 30_000), `${kind} home joined: ${lab.output(peer).slice(-600)}`);
  assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
  const recordings = path.join(root, `${user}-heard`);
  const phone = startBaresip(path.join(root, `${user}-phone`), { user, domain: options.domain, password: `${user}-password`, proxyPort: options.sipPort }, options.phonePort, {
    toneHz: options.toneHz,
    recordDir: recordings,
    host: phoneHost.host,
    proxyHost: home.peerHost,
    spawnWith: (command, args) => lab.spawn(phoneHost.ns, command, args, { stdin: true }),
  });
  return { home, dir, user, toneHz: options.toneHz, phone: { ...phone, recordings }, peer };
}
