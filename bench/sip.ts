import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SipUserStore } from '../src/node/sip-users.js';
import { freePort, sleep } from './bench-helpers.js';

/*
 * SIPp against running p2psip peers and, in the same run with the same load, against Kamailio
 * (bench/kamailio/registrar.cfg: in-memory registrar and proxy, one worker process):
 *   - REGISTER transactions per second, digest authentication off and on;
 *   - call set-up time, INVITE to 180, for calls placed one after another: on p2psip from a phone
 *     of home A to a phone of home B (two proxies, the callee's home found through the overlay),
 *     on Kamailio through its one proxy.
 * Prints JSON lines, then the ratio p2psip / Kamailio for each.
 *   node scripts/bench.mjs sip [REGISTRATIONS] [CALLS]
 */
const registrations = Number(process.argv[2] ?? 5000);
const only = process.env.P2PSIP_BENCH_ONLY; // "register" or "calls" to run half
const calls = Number(process.argv[3] ?? 300);
const USERS = 500;
const PASSWORD = 'bench-password';
const DOMAIN = 'open.p2psip.lab';
const KAMAILIO_MODULES = '/usr/lib/x86_64-linux-gnu/kamailio/modules';
const work = mkdtempSync(path.join(tmpdir(), 'p2psip-bench-sip-'));



/** Waits until something answers OPTIONS on the port (at most 10 s). */
async function answering(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const answered = new Promise<boolean>((resolve) => socket.once('message', () => resolve(true)));
  for (let i = 0; i < 50; i++) {
    const local = socket.address().port;
    socket.send(`OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bKprobe${i};rport\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe${i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`, port, '127.0.0.1');
    if (await Promise.race([answered, sleep(200).then(() => false)])) {
      socket.close();
      return true;
    }
  }
  socket.close();
  return false;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

async function startPeer(auth: boolean, name = auth ? 'auth' : 'noauth', bootstrap?: number): Promise<{ child: ChildProcess; port: number; overlayPort: number }> {
  const dir = path.join(work, `peer-${name}`);
  const port = await freePort();
  const overlayPort = await freePort();
  const child = spawn(
    process.execPath,
    ['dist/p2psip.js', 'start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(overlayPort), '--sip-port', String(port), '--sip-auth', auth ? 'on' : 'off', '--sip-digest', 'MD5', ...(bootstrap ? ['--bootstrap', `127.0.0.1:${bootstrap}`] : [])],
    { stdio: 'ignore' },
  );
  if (!(await answering(port))) throw new Error('p2psip peer did not start');
  // The family's users, written where the running peer reads them.
  const users = new SipUserStore(dir, DOMAIN);
  for (let i = 0; i < USERS; i++) users.add(`user${i}`, PASSWORD);
  return { child, port, overlayPort };
}

async function startKamailio(auth: boolean): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('kamailio', ['-f', path.resolve('bench/kamailio/registrar.cfg'), '-L', KAMAILIO_MODULES, '-l', `udp:127.0.0.1:${port}`, '-n', '1', '-DD', '-E', '-m', '64', '-M', '8', '-w', work, ...(auth ? ['-A', 'WITH_AUTH'] : [])], { stdio: 'ignore' });
  if (!(await answering(port))) throw new Error('kamailio did not start');
  return { child, port };
}

interface LoadResult {
  ok: boolean;
  seconds: number;
}

function load(port: number, auth: boolean): LoadResult {
  const users = path.join(work, 'users.csv');
  writeFileSync(users, `SEQUENTIAL\n${Array.from({ length: USERS }, (_, i) => `user${i};[authentication username=user${i} password=${PASSWORD}];${DOMAIN}`).join('\n')}\n`);
  const scenario = path.resolve('bench/sipp', auth ? 'register-load.xml' : 'register-load-noauth.xml');
  const started = process.hrtime.bigint();
  const run = spawnSync(
    'sipp',
    [`127.0.0.1:${port}`, '-sf', scenario, '-inf', users, '-m', String(registrations), '-r', '20000', '-rp', '1000', '-l', '200', '-t', 'u1', '-i', '127.0.0.1', '-p', '0', '-nostdin', '-timeout', '300s', '-timeout_error', '-trace_err'],
    { cwd: work, encoding: 'utf8', timeout: 320_000 },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ok: run.status === 0, seconds };
}

async function measure(system: 'p2psip' | 'kamailio', auth: boolean): Promise<number> {
  const server = system === 'p2psip' ? await startPeer(auth) : await startKamailio(auth);
  try {
    load(server.port, auth); // warm-up: the JIT, the location table, the sockets
    const result = load(server.port, auth);
    const perSecond = registrations / result.seconds;
    console.log(JSON.stringify({ bench: 'sip-register', system, auth: auth ? 'digest' : 'off', registrations, allSucceeded: result.ok, seconds: round(result.seconds), registrationsPerSecond: Math.round(perSecond), transactionsPerSecond: Math.round(perSecond * (auth ? 2 : 1)) }));
    return result.ok ? perSecond : NaN;
  } finally {
    await stop(server.child);
  }
}

/** A phone that answers every call at once, registered as `callee` at `port` (no authentication). */
async function callee(port: number): Promise<{ child: ChildProcess; done: Promise<number | null> }> {
  const phonePort = await freePort();
  const users = path.join(work, 'callee.csv');
  writeFileSync(users, `SEQUENTIAL\ncallee;-;${DOMAIN}\n`);
  const registered = spawnSync('sipp', [`127.0.0.1:${port}`, '-sf', path.resolve('bench/sipp/register-load-noauth.xml'), '-inf', users, '-m', '1', '-t', 'u1', '-i', '127.0.0.1', '-p', String(phonePort), '-nostdin', '-timeout', '10s', '-timeout_error'], { cwd: work });
  if (registered.status !== 0) throw new Error('the callee phone did not register');
  const child = spawn('sipp', ['-sf', path.resolve('bench/sipp/answer-at-once.xml'), '-m', String(calls + 20), '-t', 'u1', '-i', '127.0.0.1', '-p', String(phonePort), '-nostdin', '-timeout', '300s'], { cwd: work, stdio: 'ignore' });
  return { child, done: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

/**
 * Places calls one after another (10 a second) and measures INVITE to 180 per call from SIPp's
 * message trace, whose timestamps are in microseconds (its response-time clock counts whole ms).
 */
function placeCalls(port: number, count: number): { ok: boolean; times: number[] } {
  const trace = path.join(work, `calls-${port}-${count}`);
  spawnSync('mkdir', ['-p', trace]);
  const run = spawnSync(
    'sipp',
    [`127.0.0.1:${port}`, '-sf', path.resolve('bench/sipp/call-setup.xml'), '-set', 'domain', DOMAIN, '-set', 'callee', 'callee', '-m', String(count), '-r', '10', '-l', '1', '-t', 'u1', '-i', '127.0.0.1', '-p', '0', '-nostdin', '-timeout', '300s', '-timeout_error', '-trace_msg'],
    { cwd: trace, encoding: 'utf8', timeout: 320_000 },
  );
  const file = readdirSync(trace).find((f) => f.endsWith('_messages.log'));
  return { ok: run.status === 0, times: file ? inviteTo180(readFileSync(path.join(trace, file), 'utf8')) : [] };
}

/** Milliseconds from each call's first INVITE sent to its first 180 received, from a SIPp message trace. */
function inviteTo180(log: string): number[] {
  const sentAt = new Map<string, number>();
  const times: number[] = [];
  for (const entry of log.split(/^-{20,} /m)) {
    const stamp = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6})/.exec(entry);
    const callId = /^Call-ID:\s*(\S+)/im.exec(entry)?.[1];
    if (!stamp || !callId) continue;
    const micros = Date.parse(`${stamp[1]}T${stamp[2]}Z`) * 1000 + Number(stamp[3]);
    if (/message sent[^\n]*\n\s*INVITE /.test(entry) && !sentAt.has(callId)) sentAt.set(callId, micros);
    if (/message received[^\n]*\n\s*SIP\/2\.0 180 /.test(entry) && sentAt.has(callId)) {
      times.push((micros - sentAt.get(callId)!) / 1000);
      sentAt.delete(callId);
    }
  }
  return times;
}

function summary(times: number[]): { meanMs: number; p50Ms: number; p95Ms: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { meanMs: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)), p50Ms: round(at(0.5)), p95Ms: round(at(0.95)) };
}

async function measureCalls(system: 'p2psip' | 'kamailio'): Promise<number> {
  const servers: ChildProcess[] = [];
  try {
    let callerSide: number;
    let calleeSide: number;
    if (system === 'p2psip') {
      const a = await startPeer(false, 'home-a');
      const b = await startPeer(false, 'home-b', a.overlayPort);
      servers.push(a.child, b.child);
      await sleep(3000); // B joins the ring through A
      callerSide = a.port;
      calleeSide = b.port;
    } else {
      const k = await startKamailio(false);
      servers.push(k.child);
      callerSide = calleeSide = k.port;
    }
    const phone = await callee(calleeSide);
    servers.push(phone.child);
    await sleep(1500); // the registration reaches the overlay
    placeCalls(callerSide, 10); // warm-up: the first call's overlay lookup, the JIT
    const result = placeCalls(callerSide, calls);
    const stats = summary(result.times);
    console.log(JSON.stringify({ bench: 'sip-call-setup', system, path: system === 'p2psip' ? 'phone - home A - home B - phone' : 'phone - kamailio - phone', calls, allSucceeded: result.ok, measured: result.times.length, ...stats }));
    return stats.meanMs;
  } finally {
    for (const child of servers) await stop(child);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  if (!existsSync('dist/p2psip.js')) spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  try {
    for (const auth of only === 'calls' ? [] : [false, true]) {
      const ours = await measure('p2psip', auth);
      const theirs = await measure('kamailio', auth);
      console.log(JSON.stringify({ bench: 'sip-register-ratio', auth: auth ? 'digest' : 'off', p2psipPerKamailio: round(ours / theirs) }));
    }
    if (only === 'register') return;
    const ours = await measureCalls('p2psip');
    const theirs = await measureCalls('kamailio');
    console.log(JSON.stringify({ bench: 'sip-call-setup-ratio', p2psipMeanPerKamailioMean: round(ours / theirs) }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main();
