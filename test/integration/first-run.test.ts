import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';

/*
 * The first hour as a newcomer lives it (issue 15, part 2, the parts done so far): a second peer
 * on the same machine that wants a port already taken says which port, what wanted it and the
 * flag that changes it, in one line; `start --help` shows the usage; adding a user that exists
 * does not silently change a phone's password; a peer that can never reach its bootstrap says so
 * at the default log level after 30 s, with what it tried and why it failed.
 */
const { root, running } = processLab('p2psip-first-run-');

test('a second peer that wants a taken SIP port exits with one line: the port, what needs it, the flag', async () => {
  const sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', `${root}/one`, '--open', '--bind', '127.0.0.1', '--overlay-port', '0', '--sip-port', String(sipPort)]));
  assert.ok(await eventually(() => JSON.parse(runCli(['status', '--data', `${root}/one`, '--json']).stdout).state === 'joined', 10_000));
  const second = startProcess(['start', '--data', `${root}/two`, '--open', '--bind', '127.0.0.1', '--overlay-port', '0', '--sip-port', String(sipPort)]);
  running.push(second);
  assert.equal(await second.exited, 1);
  const errors = second.output.join('').split('\n').filter((l) => l.startsWith('p2psip:'));
  assert.equal(errors.length, 1, second.output.join(''));
  assert.match(errors[0], new RegExp(`port ${sipPort} on 127\\.0\\.0\\.1 is already in use: SIP .* --sip-port`));
});

test('start --help prints the usage and exits 0', () => {
  const run = runCli(['start', '--help']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /usage: p2psip/);
});

test('user add of an existing user is refused without --replace, and replaces the password with it', () => {
  const dir = `${root}/one`;
  assert.equal(runCli(['user', 'add', 'grandpa', '--password', 'first-password', '--data', dir]).code, 0);
  const again = runCli(['user', 'add', 'grandpa', '--password', 'second-password', '--data', dir]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already a user here: add --replace/);
  assert.equal(runCli(['user', 'add', 'grandpa', '--password', 'second-password', '--replace', '--data', dir]).code, 0);
});

test('a peer that can never reach its bootstrap warns after 30 s, at the default log level, with what it tried', { timeout: 120_000 }, async () => {
  const nobody = await freeUdpPort();
  const lonely = startProcess(['start', '--data', `${root}/lonely`, '--open', '--bind', '127.0.0.1', '--overlay-port', '0', '--sip-port', 'off', '--bootstrap', `127.0.0.1:${nobody}`]);
  running.push(lonely);
  const started = Date.now();
  const warned = await eventually(() => lonely.output.join('').includes('join-stuck'), 100_000, 1000);
  const line = lonely.output.join('').split('\n').find((l) => l.includes('join-stuck')) ?? '';
  assert.ok(warned, lonely.output.join('').slice(-2000));
  assert.ok(Date.now() - started >= 29_000, 'not before 30 s');
  assert.match(line, /WARN/);
  assert.match(line, new RegExp(`127\\.0\\.0\\.1:${nobody}`));
  assert.match(line, /--advertise/);
  lonely.child.kill('SIGTERM');
});
