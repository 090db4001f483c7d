import assert from 'node:assert/strict';
import { eventually, freeUdpPort, type Running, runCli, startProcess } from './processes.js';

/**
 * Two enrolled homes on loopback with SIP on (digest MD5 first, for SIPp): home A holds the
 * overlay's authority, home B is a device enrolled as bob. Both are joined when this returns.
 * `extra` goes to both peers' start flags.
 */
export async function startTwoHomes(root: string, running: Running[], domain: string, extra: string[] = []) {
  const dirs = { a: `${root}/a`, b: `${root}/b` };
  const sipPorts = { a: await freeUdpPort(), b: await freeUdpPort() };
  const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
  assert.equal(runCli(['init', '--data', dirs.a, '--overlay', domain]).code, 0);
  running.push(startProcess(['start', '--data', dirs.a, '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPorts.a), '--sip-digest', 'MD5', ...extra]));
  assert.ok(await eventually(() => status(dirs.a).state === 'joined', 10_000), 'home A runs');
  const token = JSON.parse(runCli(['invite', '--data', dirs.a, '--user', 'bob', '--json']).stdout).token;
  running.push(startProcess(['join', token, '--data', dirs.b, '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPorts.b), '--sip-digest', 'MD5', ...extra]));
  assert.ok(await eventually(() => status(dirs.b).state === 'joined', 15_000), 'home B joined');
  return { dirs, sipPorts, status };
}
