import { reapOnExit } from './reaper.js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { after } from 'node:test';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Helpers for tests that run real p2psip processes on loopback. */
export const BUNDLE = path.resolve('dist/p2psip.js');

/**
 * The command that runs the bundle: this Node, or the one P2PSIP_NODE names (a Node 18 binary,
 * possibly behind qemu-user: "qemu-aarch64-static -L /usr/aarch64-linux-gnu /path/to/node").
 */
const NODE_COMMAND = (process.env.P2PSIP_NODE ?? process.execPath).split(' ').filter(Boolean);
const NODE = NODE_COMMAND[0];
const NODE_ARGS = NODE_COMMAND.slice(1);
/** Waits stretch by this factor when the peers run slowly (an emulated CPU). */
export const TIME_SCALE = Number(process.env.P2PSIP_TIME_SCALE ?? 1);

/** The Node version and CPU the bundle runs on here ("v18.20.8 arm64"). */
export function bundleRuntime(): string {
  return execFileSync(NODE, [...NODE_ARGS, '-p', 'process.version + " " + process.arch'], { encoding: 'utf8', timeout: 60_000 }).trim();
}

export function ensureBundle(): void {
  if (!existsSync(BUNDLE)) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}

/*
 * Ports for the processes a test starts. A port the kernel hands to bind(0) and we then close can
 * be handed to anyone's next bind(0) before our child binds it (a phone's "Address already in
 * use" in CI). So test ports come from below Linux's ephemeral range (32768-60999), where no
 * bind(0) lands, and this process never hands out one twice: tests with real processes run one
 * file at a time, so nobody else draws from it.
 */
const TEST_PORTS = { low: 20000, high: 31999 };
let nextTestPort = TEST_PORTS.low + 2 * ((process.pid * 7919) % Math.floor((TEST_PORTS.high - TEST_PORTS.low) / 2));

async function bindable(port: number): Promise<boolean> {
  const udp = createSocket('udp4');
  const udpFree = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(port, '127.0.0.1', () => resolve(true));
  });
  if (udpFree) await new Promise<void>((resolve) => udp.close(() => resolve()));
  if (!udpFree) return false;
  // SIP listens on TCP at the same port.
  const tcp = createServer();
  const tcpFree = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (tcpFree) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  return tcpFree;
}

/**
 * A port free on 127.0.0.1 for UDP and TCP, never handed out before by this process; the port
 * after it is free too and never handed out, for what takes two (baresip's TLS listens on port + 1,
 * RTP's RTCP).
 */
export async function freeUdpPort(): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const port = nextTestPort;
    nextTestPort = nextTestPort + 2 > TEST_PORTS.high ? TEST_PORTS.low : nextTestPort + 2;
    if ((await bindable(port)) && (await bindable(port + 1))) return port;
  }
  throw new Error(`no free port in ${TEST_PORTS.low}-${TEST_PORTS.high}`);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface Running {
  readonly child: ChildProcess;
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

/** Starts the bundle with `args`; `nodeFlags` go to Node itself (as the service wrappers' heap limits). */
export function startProcess(args: string[], { nodeFlags = [] }: { nodeFlags?: string[] } = {}): Running {
  // Many peers share this machine in tests: unless a test picks one, each takes a free SIP port.
  const runsPeer = args[0] === 'start' || args[0] === 'join';
  const full = runsPeer && !args.includes('--sip-port') ? [...args, '--sip-port', '0'] : args;
  const child = reapOnExit(spawn(NODE, [...NODE_ARGS, ...nodeFlags, BUNDLE, ...full], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(NODE, [...NODE_ARGS, BUNDLE, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 500): Promise<boolean> {
  const deadline = Date.now() + timeoutMs * TIME_SCALE;
  for (let i = 0; Date.now() < deadline && i < 10_000; i++) {
    try {
      if (await check()) return true;
    } catch {
      // not ready yet
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/**
 * A test file's scratch directory and real processes: whatever the file pushes onto `running`
 * is killed, and the directory removed, when its tests end (failed or not).
 */
export function processLab(prefix: string): { root: string; running: Running[] } {
  ensureBundle();
  const root = tempDir(prefix);
  const running: Running[] = [];
  after(async () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exited));
    removeDir(root);
  });
  return { root, running };
}
