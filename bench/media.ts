import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { udpMediaSockets } from '../src/node/media-sockets.js';
import { SystemClock } from '../src/runtime/clock.js';
import { silentLogger } from '../src/runtime/log.js';
import { ephemeralFromBytes } from '../src/link/secure/link-crypto.js';
import { MediaAnchor } from '../src/usages/sip/media/media-anchor.js';
import { type MediaRole, mediaSealers } from '../src/usages/sip/media/media-crypto.js';
import { MediaPortPool } from '../src/usages/sip/media/port-pool.js';
import { freePort, residentMb, sleep } from './bench-helpers.js';

/*
 * Media relaying (issue 16): N concurrent G.711 calls (50 packets a second each way, 160-byte
 * payloads, 172-byte RTP) through the home peer's MediaAnchor in a process of its own, and the
 * same streams through rtpengine (Debian's rtpengine-daemon, userspace forwarding, set up over
 * its ng protocol) in the same run, and straight from phone to phone as the baseline. Prints
 * one JSON line per relay and call count: CPU per 1,000 packets (and the ratio to rtpengine's),
 * added latency p50/p99 and jitter against the direct path, loss, and resident memory per call.
 * A bare Node dgram forwarder carries the same streams too, under the same flags: the floor of
 * what any Node process pays for them. Memory is counted from idle after a warm-up of as many
 * calls, and the warm-up itself against the cold process (firstLoadAboveColdMB), file pages apart.
 * And the call as it really goes between two homes: phone, home peer, the internet leg sealed
 * (ChaCha20-Poly1305 under the call's keys), the other home peer, phone (`p2psipSealed`: one
 * home's CPU per 1,000 packets and its ratio to the plain anchor's; latency across both homes).
 * Usage: node scripts/bench.mjs media [SECONDS] [CALLS,...]   (defaults 10 and 1,10,20)
 */
if (process.argv[2] === '--anchor-child') runAnchorChild(process.argv[3] as MediaRole | undefined);
else if (process.argv[2] === '--forwarder-child') runForwarderChild();
else void main();

interface Run {
  relay: string;
  calls: number;
  packetsSent: number;
  packetsReceived: number;
  cpuMsPer1000: number | null;
  latencyP50Us: number;
  latencyP99Us: number;
  jitterUs: number;
  rssColdMB: number | null;
  rssIdleMB: number | null;
  rssLoadedMB: number | null;
  /** The process's first load ever (the warm-up) against its cold start. */
  firstLoadAboveColdMB: number | null;
  /** Of that, pages of the node binary itself (its optimizing compiler), shared and clean. */
  firstLoadFileMB: number | null;
  /** Private (anonymous) and file-backed resident memory gained from idle to loaded. */
  anonAboveIdleMB: number | null;
  fileAboveIdleMB: number | null;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const callCounts = (process.argv[3] ?? '1,10,20').split(',').map(Number);
  const runs: Run[] = [];
  for (const calls of callCounts) {
    runs.push(await measure('direct', calls, seconds, directRelay()));
    runs.push(await measure('p2psip', calls, seconds, await anchorRelay()));
    runs.push(await measure('rtpengine', calls, seconds, await rtpengineRelay()));
    runs.push(await measure('node-forwarder', calls, seconds, await childRelay('--forwarder-child')));
    runs.push(await measure('p2psip-sealed', calls, seconds, await sealedHomesRelay()));
    const [direct, ours, theirs, plainNode, sealed] = runs.slice(-5);
    const perCall = (r: Run) => (r.rssLoadedMB !== null && r.rssIdleMB !== null ? (r.rssLoadedMB - r.rssIdleMB) / calls : null);
    console.log(
      JSON.stringify({
        bench: 'media',
        calls,
        seconds,
        cpuRatioToRtpengine: ours.cpuMsPer1000 && theirs.cpuMsPer1000 ? round(ours.cpuMsPer1000 / theirs.cpuMsPer1000) : null,
        p2psip: summary(ours, direct, perCall(ours)),
        rtpengine: summary(theirs, direct, perCall(theirs)),
        // The floor Node itself sets: the same streams through a bare dgram forwarder, same flags.
        nodeForwarder: summary(plainNode, direct, perCall(plainNode)),
        // Two home peers with the internet leg sealed between them: the CPU is one home's (each
        // does the same work), latency and jitter are added across both.
        sealedCpuRatioToPlain: sealed.cpuMsPer1000 && ours.cpuMsPer1000 ? round(sealed.cpuMsPer1000 / ours.cpuMsPer1000) : null,
        p2psipSealed: summary(sealed, direct, perCall(sealed)),
        direct: { latencyP50Us: direct.latencyP50Us, latencyP99Us: direct.latencyP99Us, jitterUs: direct.jitterUs, loss: lossOf(direct) },
      }),
    );
  }
}

function summary(r: Run, direct: Run, rssPerCallMB: number | null) {
  return {
    cpuMsPer1000: r.cpuMsPer1000 === null ? null : round(r.cpuMsPer1000),
    addedLatencyP50Us: r.latencyP50Us - direct.latencyP50Us,
    addedLatencyP99Us: r.latencyP99Us - direct.latencyP99Us,
    addedJitterUs: round(r.jitterUs - direct.jitterUs),
    loss: lossOf(r),
    rssColdMB: r.rssColdMB,
    rssIdleMB: r.rssIdleMB,
    rssLoadedMB: r.rssLoadedMB,
    rssAboveIdleMB: r.rssLoadedMB === null || r.rssIdleMB === null ? null : round(r.rssLoadedMB - r.rssIdleMB),
    firstLoadAboveColdMB: r.firstLoadAboveColdMB,
    firstLoadFileMB: r.firstLoadFileMB,
    anonAboveIdleMB: r.anonAboveIdleMB,
    fileAboveIdleMB: r.fileAboveIdleMB,
    rssPerCallMB: rssPerCallMB === null ? null : round(rssPerCallMB),
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;
const lossOf = (r: Run) => round(1 - r.packetsReceived / r.packetsSent);

/** A relay under test: where each call's two phones must send, and the process to measure. */
interface Relay {
  readonly pid: number | undefined;
  /** Sets up one call between phones at ports a and b; resolves with where a sends (to reach b) and where b sends. */
  call(id: string, a: number, b: number): Promise<{ aSendsTo: number; bSendsTo: number }>;
  /** Ends one call and frees what it held. */
  end(id: string): Promise<void>;
  stop(): Promise<void>;
}

function directRelay(): Relay {
  return { pid: undefined, call: async (_id, a, b) => ({ aSendsTo: b, bSendsTo: a }), end: async () => undefined, stop: async () => undefined };
}

/** The MediaAnchor in a child process, told what to open over stdin (one JSON line per call). */
function anchorRelay(): Promise<Relay> {
  return childRelay('--anchor-child');
}

/**
 * Two home peers (anchors in processes of their own), the far side of each sealed towards the
 * other's: phone a, home 1, sealed, home 2, phone b. Measured (pid) is home 1.
 */
async function sealedHomesRelay(): Promise<Relay> {
  const [one, two] = [await childProcess('--anchor-child', 'offerer'), await childProcess('--anchor-child', 'answerer')];
  return {
    pid: one.pid,
    call: async (id, a, b) => {
      // Home 1's far side is pointed at home 2's once home 2 has its ports (as SDP does).
      const first = JSON.parse(await one.ask({ op: 'open', id, a, b: 9 })) as { a: number; b: number };
      const second = JSON.parse(await two.ask({ op: 'open', id, a: b, b: first.b })) as { a: number; b: number };
      await one.ask({ op: 'point', id, b: second.b });
      return { aSendsTo: first.a, bSendsTo: second.a };
    },
    end: async (id) => {
      await one.ask({ op: 'close', id });
      await two.ask({ op: 'close', id });
    },
    stop: async () => {
      await one.stop();
      await two.stop();
    },
  };
}

/** A relay in a child process of ours (the anchor, or the bare forwarder), driven over stdin. */
async function childRelay(mode: '--anchor-child' | '--forwarder-child'): Promise<Relay> {
  const { pid, ask, stop } = await childProcess(mode);
  return {
    pid,
    call: async (id, a, b) => {
      const ports = JSON.parse(await ask({ op: 'open', id, a, b })) as { a: number; b: number };
      // Phone a talks to the anchor's a side; what it sends leaves the b side for phone b.
      return { aSendsTo: ports.a, bSendsTo: ports.b };
    },
    end: async (id) => void (await ask({ op: 'close', id })),
    stop,
  };
}

/** A child process of this script in `mode`, answering one JSON line per JSON line asked. */
async function childProcess(mode: '--anchor-child' | '--forwarder-child', ...args: string[]): Promise<{ pid: number | undefined; ask: (request: object) => Promise<string>; stop: () => Promise<void> }> {
  // With the heap flags and malloc arenas the packaged service runs under (targets/*, bench/footprint.ts).
  // The service wrappers' flags and allocator setting; BENCH_CHILD_FLAGS and BENCH_CHILD_ENV (K=V,...) try others.
  const flags = (process.env.BENCH_CHILD_FLAGS ?? '--max-old-space-size=24 --max-semi-space-size=1').split(' ').filter(Boolean);
  const extraEnv = Object.fromEntries((process.env.BENCH_CHILD_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const child = spawn(process.execPath, [...flags, process.argv[1], mode, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, MALLOC_ARENA_MAX: '2', ...extraEnv } });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const ask = (request: object) =>
    new Promise<string>((resolve) => {
      waiting.push(resolve);
      child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
  await ask({ op: 'ready' });
  return { pid: child.pid, ask, stop: () => stopChild(child) };
}

/**
 * The anchor's child. With a `role`, a home peer whose far side (b) is sealed under the call's
 * keys, from fixed X25519 keys for both homes (a bench's: no enrollment, no signatures).
 */
function runAnchorChild(role?: MediaRole): void {
  const clock = new SystemClock();
  // Each anchor of a sealed pair takes ports of its own.
  const low = role === 'answerer' ? 34000 : 32000;
  const anchor = new MediaAnchor(new MediaPortPool(low, low + 999), udpMediaSockets('127.0.0.1', silentLogger), clock, 600_000);
  const keys = { offerer: ephemeralFromBytes(new Uint8Array(32).fill(1)), answerer: ephemeralFromBytes(new Uint8Array(32).fill(2)) };
  const endpoint = (port: number) => ({ rtp: { address: '127.0.0.1', port }, rtcp: { address: '127.0.0.1', port: port + 1 } });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const request = JSON.parse(line) as { op: string; id: string; a: number; b: number };
    if (request.op === 'ready') return void process.stdout.write('{}\n');
    if (request.op === 'close') {
      anchor.close(request.id);
      return void process.stdout.write('{}\n');
    }
    if (request.op === 'point') {
      const stream = anchor.sessionsNow().find((s) => s.id === request.id)!.streams[0];
      const far = endpoint(request.b);
      stream.rtp.setParty('b', far.rtp, ['127.0.0.1']);
      stream.rtcp.setParty('b', far.rtcp, ['127.0.0.1']);
      return void process.stdout.write('{}\n');
    }
    void anchor.open(request.id, [{ offered: { a: endpoint(request.a), b: endpoint(request.b) }, vouched: { a: ['127.0.0.1'], b: ['127.0.0.1'] } }]).then((session) => {
      if (role) {
        for (const channel of ['rtp', 'rtcp'] as const) {
          const { send, receive } = mediaSealers(keys[role], role, keys.offerer.publicKey, keys.answerer.publicKey, request.id, `0/${channel}`);
          session.streams[0][channel].seal('b', { seal: (packet, flags) => send.seal(packet, flags), open: (datagram) => receive.open(datagram) });
        }
      }
      process.stdout.write(`${JSON.stringify(session.streams[0].ports)}\n`);
    });
  });
  lines.on('close', () => process.exit(0));
}

/**
 * The least a Node process can do for the same streams: two plain dgram sockets per call, each
 * passing what one phone sends out of the other to the other phone. No SDP, sealing or counting:
 * the floor of Node's own memory and CPU, to read the anchor's figures against.
 */
function runForwarderChild(): void {
  const calls = new Map<string, Socket[]>();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const request = JSON.parse(line) as { op: string; id: string; a: number; b: number };
    if (request.op === 'ready') return void process.stdout.write('{}\n');
    if (request.op === 'close') {
      for (const socket of calls.get(request.id) ?? []) socket.close();
      calls.delete(request.id);
      return void process.stdout.write('{}\n');
    }
    const [aSide, bSide] = [createSocket('udp4'), createSocket('udp4')];
    aSide.on('message', (message) => bSide.send(message, request.b, '127.0.0.1'));
    bSide.on('message', (message) => aSide.send(message, request.a, '127.0.0.1'));
    calls.set(request.id, [aSide, bSide]);
    let bound = 0;
    const ready = () => ++bound === 2 && process.stdout.write(`${JSON.stringify({ a: aSide.address().port, b: bSide.address().port })}\n`);
    aSide.bind(0, '127.0.0.1', ready);
    bSide.bind(0, '127.0.0.1', ready);
  });
  lines.on('close', () => process.exit(0));
}

/** rtpengine in userspace, one call set up per offer/answer over ng (bencode on UDP). */
async function rtpengineRelay(): Promise<Relay> {
  const ng = await freePort();
  const child = spawn('rtpengine', ['--interface=127.0.0.1', `--listen-ng=127.0.0.1:${ng}`, '--table=-1', '--port-min=33000', '--port-max=33999', '--foreground', '--log-stderr', '--log-level=3'], { stdio: 'ignore' });
  const control = createSocket('udp4');
  await new Promise<void>((resolve) => control.bind(0, '127.0.0.1', () => resolve()));
  let cookie = 0;
  const pending = new Map<string, (reply: Record<string, unknown>) => void>();
  control.on('message', (message) => {
    const text = message.toString('latin1');
    const space = text.indexOf(' ');
    pending.get(text.slice(0, space))?.(bdecode(text.slice(space + 1)) as Record<string, unknown>);
  });
  const command = (body: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = `c${++cookie}`;
      pending.set(id, resolve);
      control.send(`${id} ${bencode(body)}`, ng, '127.0.0.1');
      setTimeout(() => reject(new Error(`rtpengine did not answer ${body.command}`)), 3000);
    });
  for (let i = 0; i < 50; i++) {
    try {
      await command({ command: 'ping' });
      break;
    } catch {
      await sleep(100);
    }
  }
  const sdp = (port: number) => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
  const portIn = (reply: Record<string, unknown>) => Number(/m=audio (\d+)/.exec(String(reply.sdp))![1]);
  return {
    pid: child.pid,
    call: async (id, a, b) => {
      const offer = await command({ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: sdp(a) });
      const answer = await command({ command: 'answer', 'call-id': id, 'from-tag': 'a', 'to-tag': 'b', sdp: sdp(b) });
      // The offer went on to b with rtpengine's port for b to send to; the answer came back to a likewise.
      return { aSendsTo: portIn(answer), bSendsTo: portIn(offer) };
    },
    end: async (id) => void (await command({ command: 'delete', 'call-id': id })),
    stop: async () => {
      control.close();
      await stopChild(child);
    },
  };
}

async function measure(name: string, calls: number, seconds: number, relay: Relay): Promise<Run> {
  // Idle is the relay after as many calls as are measured have come and gone, as any running peer
  // is: the first load a process ever carries also pays the runtime's one-time warm-up (its
  // optimizing compiler paged in from the node binary, code compiled for the UDP path, allocator
  // arenas), which is no call's own; it is shown apart (rssColdMB, and firstLoadAboveColdMB).
  const cold = resident(relay.pid);
  const firstLoad = await warmUp(name, relay, calls);
  const rssIdleMB = rssMB(relay.pid);
  const idle = resident(relay.pid);
  const phones: { socket: Socket; port: number; peerPort: number }[] = [];
  const latencies: number[] = [];
  const transits = new Map<Socket, number>();
  let jitterSum = 0;
  let jitterCount = 0;
  let received = 0;
  for (let i = 0; i < calls; i++) {
    const [a, b] = [await openPhone(), await openPhone()];
    const { aSendsTo, bSendsTo } = await relay.call(`bench-${name}-${calls}-${i}`, a.port, b.port);
    phones.push({ ...a, peerPort: aSendsTo }, { ...b, peerPort: bSendsTo });
  }
  for (const { socket } of phones) {
    socket.on('message', (message) => {
      if (message.length < 172) return;
      const transit = Number(process.hrtime.bigint() - message.readBigUInt64BE(12)) / 1000;
      received++;
      latencies.push(transit);
      const last = transits.get(socket);
      if (last !== undefined) {
        jitterSum += Math.abs(transit - last);
        jitterCount++;
      }
      transits.set(socket, transit);
    });
  }
  // Let every relay learn both phones (and rtpengine latch) before counting.
  await sendRound(phones, 0);
  await sleep(200);
  received = 0;
  latencies.length = 0;
  jitterSum = 0;
  jitterCount = 0;
  transits.clear();
  const cpuBefore = cpuMs(relay.pid);
  let sent = 0;
  const rounds = seconds * 50;
  const started = performance.now();
  for (let r = 1; r <= rounds; r++) {
    sent += await sendRound(phones, r);
    const due = started + r * 20;
    await sleep(Math.max(0, due - performance.now()));
  }
  await sleep(300);
  const cpuAfter = cpuMs(relay.pid);
  const rssLoadedMB = rssMB(relay.pid);
  const loaded = resident(relay.pid);
  for (const { socket } of phones) socket.close();
  await relay.stop();
  latencies.sort((x, y) => x - y);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return {
    relay: name,
    calls,
    packetsSent: sent,
    packetsReceived: received,
    cpuMsPer1000: cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) / Math.max(1, received)) * 1000,
    latencyP50Us: at(0.5),
    latencyP99Us: at(0.99),
    jitterUs: jitterCount ? jitterSum / jitterCount : 0,
    rssIdleMB,
    rssLoadedMB,
    rssColdMB: cold?.rss ?? null,
    firstLoadAboveColdMB: cold && firstLoad ? round(firstLoad.rss - cold.rss) : null,
    firstLoadFileMB: cold && firstLoad ? round(firstLoad.file - cold.file) : null,
    anonAboveIdleMB: idle && loaded ? round(loaded.anon - idle.anon) : null,
    fileAboveIdleMB: idle && loaded ? round(loaded.file - idle.file) : null,
  };
}

/** CALLS calls, 2 s of G.711 each way, then ended; returns the resident memory while they ran. */
async function warmUp(name: string, relay: Relay, calls: number): Promise<ReturnType<typeof resident>> {
  const phones: { socket: Socket; port: number; peerPort: number }[] = [];
  for (let i = 0; i < calls; i++) {
    const [a, b] = [await openPhone(), await openPhone()];
    const { aSendsTo, bSendsTo } = await relay.call(`warm-up-${name}-${i}`, a.port, b.port);
    phones.push({ ...a, peerPort: aSendsTo }, { ...b, peerPort: bSendsTo });
  }
  for (let r = 0; r < 100; r++) {
    await sendRound(phones, r);
    await sleep(20);
  }
  const loaded = resident(relay.pid);
  for (let i = 0; i < calls; i++) await relay.end(`warm-up-${name}-${i}`);
  for (const { socket } of phones) socket.close();
  await sleep(500);
  return loaded;
}

async function openPhone(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port };
}

/** One 20 ms packet from every phone: a 12-byte RTP header (PCMU), then the send time, then zeros. */
async function sendRound(phones: { socket: Socket; peerPort: number }[], seq: number): Promise<number> {
  for (const { socket, peerPort } of phones) {
    const packet = Buffer.alloc(172);
    packet[0] = 0x80;
    packet.writeUInt16BE(seq & 0xffff, 2);
    packet.writeUInt32BE(seq * 160, 4);
    packet.writeBigUInt64BE(process.hrtime.bigint(), 12);
    socket.send(packet, peerPort, '127.0.0.1');
  }
  return phones.length;
}

/** User and system CPU a process used, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function resident(pid: number | undefined) {
  return pid === undefined ? null : residentMb(pid);
}

function rssMB(pid: number | undefined): number | null {
  return pid === undefined ? null : residentMb(pid).rss;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Bencode, as much as ng needs: strings, integers, lists and dictionaries. */
function bencode(value: unknown): string {
  if (typeof value === 'number') return `i${value}e`;
  if (typeof value === 'string') return `${Buffer.byteLength(value, 'latin1')}:${value}`;
  if (Array.isArray(value)) return `l${value.map(bencode).join('')}e`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1));
  return `d${entries.map(([k, v]) => bencode(k) + bencode(v)).join('')}e`;
}

function bdecode(text: string): unknown {
  let i = 0;
  const next = (): unknown => {
    const c = text[i];
    if (c === 'i') {
      const end = text.indexOf('e', i);
      const n = Number(text.slice(i + 1, end));
      i = end + 1;
      return n;
    }
    if (c === 'l' || c === 'd') {
      i++;
      const items: unknown[] = [];
      while (text[i] !== 'e') items.push(next());
      i++;
      if (c === 'l') return items;
      const dict: Record<string, unknown> = {};
      for (let k = 0; k < items.length; k += 2) dict[String(items[k])] = items[k + 1];
      return dict;
    }
    const colon = text.indexOf(':', i);
    const length = Number(text.slice(i, colon));
    const s = text.slice(colon + 1, colon + 1 + length);
    i = colon + 1 + length;
    return s;
  };
  return next();
}
