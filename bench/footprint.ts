import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { callPeer } from '../src/node/control-client.js';
import { freePort, sleep } from './bench-helpers.js';

/*
 * Footprint of the peer as the service wrappers run it (V8 heap capped at 32 MB, semi-space at
 * 1 MB), beside a bare `node` process measured in the same run:
 *   - bundle and package size per target;
 *   - cold start: from spawning the process to a peer that has joined an overlay;
 *   - resident memory idle, with 100 phones registered, with 10,000 values stored.
 *   node scripts/bench.mjs footprint [PHONES] [VALUES]
 */
const phones = Number(process.argv[2] ?? 100);
const values = Number(process.argv[3] ?? 10_000);
const SERVICE_FLAGS = (process.env.P2PSIP_SERVICE_FLAGS ?? '--max-old-space-size=32 --max-semi-space-size=1').split(' ');
const work = mkdtempSync(path.join(tmpdir(), 'p2psip-bench-footprint-'));
const children: ChildProcess[] = [];

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 102.4) / 10, peak: Math.round(kb('VmHWM') / 102.4) / 10 };
}


function run(args: string[], flags: string[] = SERVICE_FLAGS): ChildProcess {
  const child = spawn(process.execPath, [...flags, ...args], { stdio: 'ignore', env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '' } });
  children.push(child);
  return child;
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

/** RSS sampled for a while after things settle (the largest sample: what the router must hold). */
async function settledRss(pid: number, ms = 3000): Promise<{ rss: number; peak: number }> {
  let worst = { rss: 0, peak: 0 };
  for (let t = 0; t < ms; t += 250) {
    global.gc?.();
    const now = rssMb(pid);
    worst = { rss: Math.max(worst.rss, now.rss), peak: now.peak };
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
  const bareRss = await settledRss(bare.pid!, 1000);

  // The overlay to join: a first peer.
  const firstDir = path.join(work, 'first');
  const firstPort = await freePort();
  run([bundle, 'start', '--open', '--data', firstDir, '--bind', '127.0.0.1', '--overlay-port', String(firstPort), '--sip-port', 'off', '--storage', 'memory']);
  if (!(await joined(firstDir, 10_000))) throw new Error('the first peer did not start');

  // The measured peer, as the service wrappers run it, and once more with Node's default heap.
  for (const flags of [SERVICE_FLAGS, []]) {
    const label = flags.length ? 'service flags' : 'default heap';
    const dir = path.join(work, `peer-${flags.length}`);
    const sipPort = await freePort();
    const started = Date.now();
    const peer = run([bundle, 'start', '--open', '--data', dir, '--bind', '127.0.0.1', '--overlay-port', String(await freePort()), '--bootstrap', `127.0.0.1:${firstPort}`, '--sip-port', String(sipPort), '--sip-auth', 'off'], flags);
    if (!(await joined(dir, 20_000))) throw new Error('the peer did not join');
    const coldStartMs = Date.now() - started;
    await sleep(2000);
    const idle = await settledRss(peer.pid!);
    const registered = await registerPhones(sipPort, phones);
    await sleep(2000);
    const withPhones = await settledRss(peer.pid!);
    const storedCount = await storeValues(dir, values);
    await sleep(2000);
    const withValues = await settledRss(peer.pid!);
    const after = (await callPeer(dir, { op: 'status' })) as { storage: { entries: number; bytes: number }; memory: Record<string, number> };
    const line = (what: string, m: { rss: number; peak: number }, extra: Record<string, unknown> = {}) =>
      console.log(JSON.stringify({ bench: 'footprint', heap: label, what, rssMB: m.rss, peakMB: m.peak, bareNodeMB: bareRss.rss, ratioToBareNode: Math.round((m.rss / bareRss.rss) * 100) / 100, ...extra }));
    console.log(JSON.stringify({ bench: 'footprint', heap: label, what: 'cold start to joined', ms: coldStartMs, flags: flags.join(' ') }));
    line('peer idle', idle);
    line(`peer with ${registered} phones registered`, withPhones);
    line(`peer after storing ${values} values`, withValues, { stored: storedCount, refused: values - storedCount, entriesHeld: after.storage.entries, storedBytes: after.storage.bytes, ...after.memory });
    peer.kill('SIGKILL');
  }
  console.log(JSON.stringify({ bench: 'footprint', what: 'bare node', rssMB: bareRss.rss, node: process.version }));
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
