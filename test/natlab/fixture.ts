import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after } from 'node:test';
import { type Softphone, startBaresip } from '../helpers/baresip.js';
import { BUNDLE, ensureBundle, eventually, removeDir, runCli, tempDir } from '../helpers/processes.js';
import { type Home, LAB_PORT, NatLab, type RouterKind } from './lab.js';

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
