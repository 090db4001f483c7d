import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, type Running, startProcess } from '../helpers/processes.js';

/*
 * Sealed links and revocation with real processes on loopback: peers talk only over encrypted
 * links; the root authority revokes one device; the new configuration floods to every running
 * peer (ConfigUpdate), the revoked device is cut off, and a peer that was stopped meanwhile
 * learns of it from the configuration sequence of the first messages it exchanges on return.
 */
const { root, running } = processLab('p2psip-rev-');

const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
const dirs = { a: `${root}/a`, bob: `${root}/bob`, carol: `${root}/carol`, dave: `${root}/dave` };
const ports: Record<string, number> = {};
const processes: Record<string, Running> = {};
const neighbourIds = (dir: string): string[] => {
  const s = status(dir);
  return [...s.successors, ...s.predecessors].map((p: { id: string }) => p.id);
};

async function join(name: 'bob' | 'carol' | 'dave'): Promise<void> {
  const invite = runCli(['invite', '--data', dirs.a, '--user', name, '--json']);
  assert.equal(invite.code, 0, invite.stderr);
  ports[name] = await freeUdpPort();
  processes[name] = startProcess(['join', JSON.parse(invite.stdout).token, '--data', dirs[name], '--bind', '127.0.0.1', '--overlay-port', String(ports[name])]);
  running.push(processes[name]);
  assert.ok(await eventually(() => status(dirs[name]).state === 'joined', 15_000), `${name} joined`);
}

test('four enrolled peers form a ring over sealed links only; a plaintext frame is refused', async () => {
  assert.equal(runCli(['init', '--data', dirs.a, '--overlay', 'browns.example']).code, 0);
  ports.a = await freeUdpPort();
  processes.a = startProcess(['start', '--data', dirs.a, '--bind', '127.0.0.1', '--overlay-port', String(ports.a)]);
  running.push(processes.a);
  assert.ok(await eventually(() => status(dirs.a).state === 'joined', 10_000));
  for (const name of ['bob', 'carol', 'dave'] as const) await join(name);
  const a = status(dirs.a);
  assert.equal(a.linkSecurity.mode, 'sealed');
  assert.ok(a.linkSecurity.sessions >= 3, `sessions ${a.linkSecurity.sessions}`);
  assert.ok(a.linkSecurity.opened > 0);
  assert.equal(a.transport.senderMismatches, 0);
  // A plaintext data frame, as a pre-encryption peer would send: dropped before decoding.
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.send(Buffer.from([0x84, 0x00, 0x01, 0x40, 0x40]), ports.a, '127.0.0.1', () => resolve()));
  socket.close();
  assert.ok(await eventually(() => status(dirs.a).linkSecurity.plaintextRefused === 1, 5000));
});

test('revoke: the configuration floods to running peers and the revoked device is cut off', async () => {
  const carolId = status(dirs.carol).nodeId;
  // Dave is away while it happens.
  processes.dave.child.kill('SIGTERM');
  assert.equal(await processes.dave.exited, 0);
  const revoked = runCli(['revoke', 'carol', '--data', dirs.a, '--json']);
  assert.equal(revoked.code, 0, revoked.stderr);
  const result = JSON.parse(revoked.stdout);
  assert.deepEqual(result.users, ['carol@browns.example']);
  assert.equal(result.fingerprints.length, 1);
  assert.equal(result.revoked, 1);
  const sequence = result.configSequence;
  assert.ok(await eventually(() => status(dirs.bob).enrollment.configSequence === sequence, 10_000), 'bob has the new configuration');
  assert.equal(status(dirs.bob).enrollment.revoked, 1);
  assert.ok(
    await eventually(() => !neighbourIds(dirs.a).includes(carolId) && !neighbourIds(dirs.bob).includes(carolId), 30_000),
    'carol is no longer anyone\'s neighbour',
  );
  assert.ok(await eventually(() => status(dirs.carol).state === 'revoked', 10_000), 'carol\'s own status says she was revoked');
  const a = status(dirs.a).linkSecurity;
  assert.ok(a.sessionsRevoked + a.handshakesRefused > 0, 'her link was dropped and not let back in');
  // Cut off, she may still store on her own peer (when the name falls in her own range; its
  // answer then lists the successors she would copy to, which refuse her), but the overlay
  // never has it: neither peer that is left can fetch it.
  runCli(['store', 'DEBUG-NOTE', 'carol@browns.example', 'still here?', '--data', dirs.carol]);
  assert.equal(runCli(['fetch', 'DEBUG-NOTE', 'carol@browns.example', '--data', dirs.bob]).code, 1, 'not in the overlay (bob)');
  assert.equal(runCli(['fetch', 'DEBUG-NOTE', 'carol@browns.example', '--data', dirs.a]).code, 1, 'not in the overlay (home)');
});

test('a peer that was stopped during the update learns it on return, from the first messages it exchanges', async () => {
  const sequence = status(dirs.a).enrollment.configSequence;
  assert.ok(status(dirs.a).enrollment.revoked === 1);
  processes.dave = startProcess(['start', '--data', dirs.dave, '--bind', '127.0.0.1', '--overlay-port', String(ports.dave)]);
  running.push(processes.dave);
  assert.ok(await eventually(() => status(dirs.dave).enrollment.configSequence === sequence, 20_000), 'dave caught up');
  assert.equal(status(dirs.dave).enrollment.revoked, 1);
  assert.ok(status(dirs.dave).enrollment.configUpdates.adopted >= 1);
});

test('revoke refuses clearly: an unknown user, and anywhere but the root authority', () => {
  const unknown = runCli(['revoke', 'nobody', '--data', dirs.a]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no certificate was issued here to nobody@browns.example/);
  const elsewhere = runCli(['revoke', 'dave', '--data', dirs.bob]);
  assert.equal(elsewhere.code, 1);
  assert.match(elsewhere.stderr, /root authority/);
  const self = runCli(['revoke', 'home', '--data', dirs.a]);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /cannot revoke itself/);
  assert.equal(runCli(['revoke', '--data', dirs.a]).code, 2);
});
