import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, type Running, startProcess } from '../helpers/processes.js';

/*
 * Client mode with real processes (RFC 7890 s2): a device enrolled with `invite --client` uses
 * the overlay through one peer without routing or storing; no peer lets it into the ring, and
 * when its peer dies it attaches to another.
 */
const { root, running } = processLab('p2psip-client-');

const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
const dirs = { a: `${root}/a`, b: `${root}/b`, laptop: `${root}/laptop` };
const ports: Record<string, number> = {};
const processes: Record<string, Running> = {};
const ringIds = (dir: string): string[] => {
  const s = status(dir);
  return [...s.successors, ...s.predecessors, ...s.fingers].map((p: { id: string }) => p.id);
};

function invite(args: string[]): string {
  const r = runCli(['invite', '--data', dirs.a, '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).token;
}

test('a device enrolled with invite --client attaches to one peer and is nobody\'s ring neighbour', async () => {
  assert.equal(runCli(['init', '--data', dirs.a, '--overlay', 'greens.example']).code, 0);
  ports.a = await freeUdpPort();
  processes.a = startProcess(['start', '--data', dirs.a, '--bind', '127.0.0.1', '--overlay-port', String(ports.a)]);
  running.push(processes.a);
  assert.ok(await eventually(() => status(dirs.a).state === 'joined', 10_000));
  ports.b = await freeUdpPort();
  processes.b = startProcess(['join', invite(['--user', 'bob']), '--data', dirs.b, '--bind', '127.0.0.1', '--overlay-port', String(ports.b)]);
  running.push(processes.b);
  assert.ok(await eventually(() => status(dirs.b).state === 'joined', 15_000));

  ports.laptop = await freeUdpPort();
  const bootstrap = `127.0.0.1:${ports.a},127.0.0.1:${ports.b}`;
  processes.laptop = startProcess(['join', invite(['--user', 'laptop', '--client']), '--data', dirs.laptop, '--bind', '127.0.0.1', '--overlay-port', String(ports.laptop), '--bootstrap', bootstrap]);
  running.push(processes.laptop);
  assert.ok(await eventually(() => status(dirs.laptop).state === 'attached', 15_000), 'the client attached');
  const laptop = status(dirs.laptop);
  assert.equal(laptop.role, 'client');
  assert.equal(laptop.topology, 'client');
  assert.equal(laptop.storage, undefined, 'a client stores nothing for the overlay');
  assert.ok([status(dirs.a).nodeId, status(dirs.b).nodeId].includes(laptop.peer.id));
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(!ringIds(dirs.a).includes(laptop.nodeId) && !ringIds(dirs.b).includes(laptop.nodeId), 'not in any ring table');
});

test('the client stores, fetches and routes through its peer', () => {
  const stored = runCli(['store', 'DEBUG-NOTE', 'laptop@greens.example', 'from the laptop', '--data', dirs.laptop, '--json']);
  assert.equal(stored.code, 0, stored.stderr);
  const fetched = JSON.parse(runCli(['fetch', 'DEBUG-NOTE', 'laptop@greens.example', '--data', dirs.a, '--json']).stdout);
  assert.equal(fetched.values[0].value, 'from the laptop');
  assert.equal(fetched.values[0].signer, 'laptop@greens.example');
  const back = JSON.parse(runCli(['fetch', 'DEBUG-NOTE', 'laptop@greens.example', '--data', dirs.laptop, '--json']).stdout);
  assert.equal(back.values.length, 1);
  const route = JSON.parse(runCli(['route', 'somebody@greens.example', '--data', dirs.laptop, '--json']).stdout);
  assert.ok(route.ping.responder, `routed ping answered: ${JSON.stringify(route.ping)}`);
});

test('when its peer dies the client attaches to another one', async () => {
  const first = status(dirs.laptop).peer.id;
  const victim = first === status(dirs.a).nodeId ? 'a' : 'b';
  processes[victim].child.kill('SIGKILL');
  await processes[victim].exited;
  assert.ok(await eventually(() => {
    const s = status(dirs.laptop);
    return s.state === 'attached' && s.peer.id !== first;
  }, 40_000), 'attached to the surviving peer');
  const survivor = victim === 'a' ? dirs.b : dirs.a;
  assert.equal(status(dirs.laptop).peer.id, status(survivor).nodeId);
});

test('the surviving peer served alone as a ring of one, and merges with the other when it returns', async () => {
  const victim = processes.a.child.exitCode !== null || processes.a.child.signalCode ? 'a' : 'b';
  const survivor = victim === 'a' ? 'b' : 'a';
  assert.equal(status(dirs[survivor]).state, 'joined', 'alone, it still serves');
  processes[victim] = startProcess(['start', '--data', dirs[victim], '--bind', '127.0.0.1', '--overlay-port', String(ports[victim])]);
  running.push(processes[victim]);
  assert.ok(
    await eventually(() => status(dirs[survivor]).successors[0]?.id === status(dirs[victim]).nodeId && status(dirs[victim]).successors[0]?.id === status(dirs[survivor]).nodeId, 45_000),
    'one ring of two again',
  );
});
