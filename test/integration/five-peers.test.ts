import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resourceId } from '../../src/identity/ids.js';
import { ensureBundle, eventually, freeUdpPort, removeDir, type Running, runCli, startProcess, tempDir } from '../helpers/processes.js';

/*
 * Five real p2psip processes on loopback form a Chord ring over real UDP, route a name to the
 * peer responsible for it, heal after one is killed with SIGKILL, and close over a peer that
 * leaves gracefully on SIGTERM.
 */
ensureBundle();
const root = tempDir('p2psip-it-');
const peers: { dir: string; port: number; proc: Running; id?: string }[] = [];

after(async () => {
  for (const p of peers) if (p.proc.child.exitCode === null) p.proc.child.kill('SIGKILL');
  await Promise.all(peers.map((p) => p.proc.exited));
  removeDir(root);
});

interface Status {
  nodeId: string;
  state: string;
  mode: string;
  warning?: string;
  successors: { id: string }[];
  predecessors: { id: string }[];
}

function describe(s: Status): string {
  return `${s.nodeId.slice(0, 6)} s=${s.successors.map((x) => x.id.slice(0, 6))} p=${s.predecessors.map((x) => x.id.slice(0, 6))}`;
}

function status_(p: { proc: Running }): string {
  return p.proc.output.join('').slice(0, 300);
}

function status(dir: string): Status {
  const r = runCli(['status', '--data', dir, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Status;
}

/** Every listed peer's first successor and predecessor are its true ring neighbours. */
function ringCorrect(live: typeof peers): boolean {
  const statuses = live.map((p) => status(p.dir));
  const sorted = statuses.map((s) => s.nodeId).sort();
  return statuses.every((s) => {
    const at = sorted.indexOf(s.nodeId);
    return (
      s.state === 'joined' &&
      s.successors[0]?.id === sorted[(at + 1) % sorted.length] &&
      s.predecessors[0]?.id === sorted[(at - 1 + sorted.length) % sorted.length]
    );
  });
}

test('five peers started one after another form a correct ring over real UDP', async () => {
  for (let i = 0; i < 5; i++) {
    const dir = `${root}/p${i}`;
    const port = await freeUdpPort();
    const args = ['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(port)];
    if (i > 0) args.push('--bootstrap', `127.0.0.1:${peers[0].port}`);
    peers.push({ dir, port, proc: startProcess(args) });
    assert.ok(await eventually(() => status(dir).state === 'joined', 15_000), `peer ${i} joined: ${peers[i].proc.output.join('')}`);
  }
  assert.ok(await eventually(() => ringCorrect(peers), 40_000), 'ring correct');
  const s = status(peers[0].dir);
  assert.equal(s.mode, 'open');
  assert.match(s.warning ?? '', /OPEN OVERLAY/, 'status says loudly that the overlay is open');
});

test('a message to a name reaches the peer responsible for it, and route shows the path', () => {
  const ids = peers.map((p) => status(p.dir).nodeId);
  const target = resourceId('alice@open.p2psip.lab');
  const sorted = [...ids].sort();
  const responsible = sorted.find((id) => BigInt(`0x${id}`) >= target) ?? sorted[0];
  for (const p of peers) {
    const r = runCli(['route', 'alice@open.p2psip.lab', '--data', p.dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const trace = JSON.parse(r.stdout) as { responsible: string; path: { id: string }[]; ping: { responder: string } };
    assert.equal(trace.responsible, responsible);
    assert.equal(trace.ping.responder, responsible);
    assert.equal(trace.path[0].id, status(p.dir).nodeId);
  }
  const human = runCli(['route', 'alice@open.p2psip.lab', '--data', peers[1].dir]);
  assert.match(human.stdout, /\(responsible\)/);
});

test('after one peer is killed with SIGKILL the ring heals around it', async () => {
  const victim = peers[2];
  victim.proc.child.kill('SIGKILL');
  await victim.proc.exited;
  const live = peers.filter((p) => p !== victim);
  assert.ok(await eventually(() => ringCorrect(live), 60_000), 'ring healed');
});

test('SIGTERM makes a peer leave gracefully: it exits 0 and the ring closes without waiting for failure detection', async () => {
  const leaver = peers[3];
  leaver.proc.child.kill('SIGTERM');
  assert.equal(await leaver.proc.exited, 0);
  const live = peers.filter((p) => p !== leaver && p !== peers[2]);
  // Failure detection would take a stabilisation period (10 s) plus retransmissions (~3 s).
  const closed = await eventually(() => ringCorrect(live), 8_000, 250);
  assert.ok(closed, `ring closed over the leaver at once: ${JSON.stringify(live.map((p) => describe(status(p.dir))))} leaver ${status_(leaver)}`);
  const counters = live.map((p) => (status(p.dir) as unknown as { counters: { leavesReceived: number } }).counters.leavesReceived);
  assert.ok(counters.reduce((a, b) => a + b, 0) >= 1, 'neighbours received the Leave');
});

test('status against a data directory with no running peer fails clearly with exit code 1', () => {
  const r = runCli(['status', '--data', `${root}/nobody`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no peer is running/);
  assert.equal(runCli(['start']).code, 2, 'usage errors exit 2');
});
