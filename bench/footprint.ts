import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { callPeer } from '../src/node/control-client.js';
import { freePort, type Resident, residentMb, sleep } from './bench-helpers.js';
import { memoryCgroup } from './memory-cgroup.js';

/*
 * Footprint of the peer as the service wrappers run it (V8 old space capped at 24 MB, semi-space
 * at 1 MB, two malloc arenas), beside a bare `node` process measured in the same run:
 *   - bundle and package size per target;
 *   - cold start: from spawning the process to a peer that has joined an overlay;
 *   - resident memory idle, with 100 phones registered, with 10,000 values offered for storage
 *     (right after, and once the minute of answers kept for retransmissions has passed);
 *     resident is split into anonymous pages (the peer's own) and file pages (the node binary);
 *   - the same again inside a 64 MB memory cgroup, as systemd runs the service (root only): the
 *     kernel keeps the node binary's code pages within what the group has left;
 *   - and once with Node's default heap, for comparison.
 *   node scripts/bench.mjs footprint [PHONES] [VALUES]
 *   P2PSIP_BENCH_ONLY=service|cgroup|default runs one configuration; P2PSIP_SERVICE_FLAGS,
 *   P2PSIP_SERVICE_ENV ("NAME=VALUE ...") and P2PSIP_PEER_ARGS try other settings.
 */
const phones = Number(process.argv[2] ?? 100);
const values = Number(process.argv[3] ?? 10_000);
const SERVICE_FLAGS = (process.env.P2PSIP_SERVICE_FLAGS ?? '--max-old-space-size=24 --max-semi-space-size=1').split(' ');
const SERVICE_ENV = Object.fromEntries((process.env.P2PSIP_SERVICE_ENV ?? 'MALLOC_ARENA_MAX=2').split(' ').filter(Boolean).map((pair) => pair.split('=') as [string, string]));
const PEER_ARGS = (process.env.P2PSIP_PEER_ARGS ?? '').split(' ').filter(Boolean);
const SETTLE_MS = Number(process.env.P2PSIP_SETTLE_MS ?? 65_000);
const CGROUP_LIMIT_BYTES = 64 * 1024 * 1024;
const work = mkdtempSync(path.join(tmpdir(), 'p2psip-bench-footprint-'));
const children: ChildProcess[] = [];

/** A node process with the service's environment; `prefix` runs it through another command. */
function run(args: string[], flags: string[] = SERVICE_FLAGS, node = process.execPath, prefix: string[] = []): ChildProcess {
  const command = [...prefix, node, ...flags, ...args];
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...SERVICE_ENV } });
  // The last of its stderr, to say why if it dies.
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (!child.killed) console.error(JSON.stringify({ bench: 'footprint', died: command.slice(-12).join(' '), code, signal, stderr: tail }));
  });
  children.push(child);
  return child;
}

/**
 * A private copy of the node binary with none of it in the page cache, so that the code pages
 * the peer reads are charged to its cgroup (pages another process read first are not).
 */
function uncachedNodeCopy(): string {
  const copy = path.join(work, 'node');
  copyFileSync(process.execPath, copy);
  chmodSync(copy, 0o755);
  // Written back first: the kernel drops only clean pages from the cache.
  const fd = openSync(copy, 'r');
  fsyncSync(fd);
  closeSync(fd);
  execFileSync('dd', [`if=${copy}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  return copy;
}

async function joined(dir: string, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(20)) {
    try {
      if (((await callPeer(dir, { op: 'status' }, 1000)) as { state: string }).state === 'joined') return true;
    } catch {
      // not up yet
    }
  }
  return false;
}

/** Memory sampled for a while after things settle (the largest sample: what the router must hold). */
async function settled(pid: number, ms = 3000): Promise<Resident> {
  let worst: Resident = { rss: 0, peak: 0, anon: 0, file: 0 };
  for (let t = 0; t < ms; t += 250) {
    const now = residentMb(pid);
    worst = { rss: Math.max(worst.rss, now.rss), peak: now.peak, anon: Math.max(worst.anon, now.anon), file: Math.max(worst.file, now.file) };
    await sleep(250);
  }
  return worst;
}

async function registerPhones(sipPort: number, count: number): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const local = socket.address().port;
  let ok = 0;
  socket.on('message', (m) => {
    if (m.toString().startsWith('SIP/2.0 200')) ok++;
  });
  for (let i = 0; i < count; i++) {
    const user = `phone${i}`;
    socket.send(`REGISTER sip:open.p2psip.lab SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bKfp${i};rport\r\nFrom: <sip:${user}@open.p2psip.lab>;tag=${i}\r\nTo: <sip:${user}@open.p2psip.lab>\r\nCall-ID: fp${i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:${user}@127.0.0.1:${local}>\r\nExpires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`, sipPort, '127.0.0.1');
    if (i % 20 === 19) await sleep(20);
  }
  for (let i = 0; i < 100 && ok < count; i++) await sleep(50);
  socket.close();
  return ok;
}

/** Stores up to `count` values; a peer at its entry quota refuses the rest with a clear error. */
async function storeValues(dir: string, count: number): Promise<number> {
  let stored = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        // One value per Resource-ID, as a busy overlay spreads them: a NODE-KEYED kind lets any
        // node write its own entry under any name.
        await callPeer(dir, { op: 'store', kind: 'RELAY-SERVICE', name: `footprint-${i}`, value: `value ${i} ${'x'.repeat(64)}`, lifetime: 3600 }, 20_000);
        stored++;
      } catch {
        // counted as not stored
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return stored;
}

async function main(): Promise<void> {
  // Sizes of what each target ships.
  for (const target of ['node18', 'debian', 'raspberry-pi', 'openwrt']) {
    const settings = JSON.parse(readFileSync(path.join('targets', target, 'build.json'), 'utf8'));
    if (!existsSync(settings.output)) execFileSync(process.execPath, ['scripts/build.mjs', '--target', target], { stdio: 'ignore' });
    const dir = path.dirname(settings.output);
    const pkg = settings.package ? path.join(dir, `p2psip_${JSON.parse(readFileSync('package.json', 'utf8')).version}_all.${settings.package.format}`) : undefined;
    console.log(JSON.stringify({ bench: 'footprint', target, bundleKB: Math.round(statSync(settings.output).size / 102.4) / 10, packageKB: pkg && existsSync(pkg) ? Math.round(statSync(pkg).size / 102.4) / 10 : null }));
  }
  const bundle = path.resolve('dist/p2psip.js');

  // A bare node process, as the reference.
  const bare = run(['-e', 'setInterval(() => {}, 1 << 30)']);
  await sleep(1000);
  const bareNode = await settled(bare.pid!, 1000);
  console.log(JSON.stringify({ bench: 'footprint', what: 'bare node', rssMB: bareNode.rss, anonMB: bareNode.anon, fileMB: bareNode.file, node: process.version }));

  const only = process.env.P2PSIP_BENCH_ONLY;
  const configurations: Configuration[] = [
    { name: 'service', label: 'service flags', flags: SERVICE_FLAGS },
    { name: 'cgroup', label: 'service flags, 64 MB cgroup', flags: SERVICE_FLAGS, cgroup: true },
    { name: 'default', label: 'default heap', flags: [] },
  ].filter((c) => !only || c.name === only);
  for (const [index, configuration] of configurations.entries()) await measurePeer(bundle, index, configuration, bareNode);
}

interface Configuration {
  name: string;
  label: string;
  flags: string[];
  cgroup?: boolean;
}

/** One peer joins an overlay of its own (so it inherits no values), then phones, then values. */
async function measurePeer(bundle: string, index: number, { label, flags, cgroup }: Configuration, bareNode: Resident): Promise<void> {
  const group = cgroup ? memoryCgroup(`p2psip-bench-${process.pid}`, CGROUP_LIMIT_BYTES) : undefined;
  if (cgroup && !group) {
    console.log(JSON.stringify({ bench: 'footprint', heap: label, skipped: 'no writable memory cgroup (needs root)' }));
    return;
  }
  const firstDir = path.join(work, `first-${index}`);
  const firstPort = await freePort();
  const first = run([bundle, 'start', '--open', '--data', firstDir, '--bind', '127.0.0.1', '--overlay-port', String(firstPort), '--sip-port', 'off', '--storage', 'memory'], []);
  if (!(await joined(firstDir, 10_000))) throw new Error('the first peer did not start');

  const dir = path.join(work, `peer-${index}`);
  const sipPort = await freePort();
  const started = Date.now();
  const peerArgs = [bundle, 'start', '--open', '--data', dir, '--bind', '127.0.0.1', '--overlay-port', String(await freePort()), '--bootstrap', `127.0.0.1:${firstPort}`, '--sip-port', String(sipPort), '--sip-auth', 'off', ...PEER_ARGS];
  const peer = group ? run(peerArgs, flags, uncachedNodeCopy(), group.enter) : run(peerArgs, flags);
  try {
    if (!(await joined(dir, 20_000))) throw new Error('the peer did not join');
    const coldStartMs = Date.now() - started;
    await sleep(2000);
    const idle = await settled(peer.pid!);
    const registered = await registerPhones(sipPort, phones);
    await sleep(2000);
    const withPhones = await settled(peer.pid!);
    const storing = Date.now();
    const storedCount = await storeValues(dir, values);
    const storesPerSecond = Math.round(values / ((Date.now() - storing) / 1000));
    await sleep(2000);
    const withValues = await settled(peer.pid!);
    const after = (await callPeer(dir, { op: 'status' })) as { storage: { entries: number; bytes: number }; memory: Record<string, number> };
    // Answers to recent requests are kept a minute for retransmissions: settled is after that.
    await sleep(SETTLE_MS);
    const valuesSettled = await settled(peer.pid!);
    // Still working: a stored value comes back.
    const fetched = (await callPeer(dir, { op: 'fetch', kind: 'RELAY-SERVICE', name: 'footprint-0' })) as { values: unknown[] };
    const line = (what: string, m: Resident, extra: Record<string, unknown> = {}) =>
      console.log(JSON.stringify({ bench: 'footprint', heap: label, what, rssMB: m.rss, peakMB: m.peak, anonMB: m.anon, fileMB: m.file, bareNodeMB: bareNode.rss, ratioToBareNode: Math.round((m.rss / bareNode.rss) * 100) / 100, ...extra }));
    console.log(JSON.stringify({ bench: 'footprint', heap: label, what: 'cold start to joined', ms: coldStartMs, flags: flags.join(' '), env: SERVICE_ENV }));
    line('peer idle', idle);
    line(`peer with ${registered} phones registered`, withPhones);
    line(`peer after ${values} values offered`, withValues, { stored: storedCount, refused: values - storedCount, storesPerSecond, entriesHeld: after.storage.entries, storedBytes: after.storage.bytes, ...after.memory });
    line(`peer holding them, ${SETTLE_MS / 1000} s later`, valuesSettled, { firstValueFetched: fetched.values.length === 1, ...((await callPeer(dir, { op: 'status' })) as { memory: Record<string, number> }).memory });
    if (group) console.log(JSON.stringify({ bench: 'footprint', heap: label, what: 'memory cgroup', cgroupVersion: group.version, limitMB: CGROUP_LIMIT_BYTES / 1048576, ...group.stats(), alive: peer.exitCode === null && peer.signalCode === null }));
  } finally {
    peer.kill('SIGKILL');
    first.kill('SIGKILL');
    if (group) {
      await new Promise((resolve) => (peer.exitCode !== null || peer.signalCode !== null ? resolve(null) : peer.once('exit', resolve)));
      group.remove();
    }
  }
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
