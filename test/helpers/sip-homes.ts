import assert from 'node:assert/strict';
import { eventually, freeUdpPort, type Running, runCli, startProcess } from './processes.js';
import { runSipp, scenarioFrom, startSipp } from './sipp.js';

/**
 * Two enrolled homes on loopback with SIP on (digest MD5 first, for SIPp): home A holds the
 * overlay's authority, home B is a device enrolled as bob. Both are joined when this returns.
 * `extra` goes to both peers' start flags.
 */
export async function startTwoHomes(root: string, running: Running[], domain: string, extra: string[] = []) {
  const dirs = { a: `${root}/a`, b: `${root}/b` };
  const sipPorts = { a: await freeUdpPort(), b: await freeUdpPort() };
  const overlayPorts = { a: await freeUdpPort(), b: await freeUdpPort() };
  const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
  const flags = (home: 'a' | 'b') => ['--data', dirs[home], '--bind', '127.0.0.1', '--overlay-port', String(overlayPorts[home]), '--sip-port', String(sipPorts[home]), '--sip-digest', 'MD5', ...extra];
  const peers = {} as Record<'a' | 'b', Running>;
  const run = (home: 'a' | 'b', args: string[]) => running.push((peers[home] = startProcess(args)));
  assert.equal(runCli(['init', '--data', dirs.a, '--overlay', domain]).code, 0);
  run('a', ['start', ...flags('a')]);
  assert.ok(await eventually(() => status(dirs.a).state === 'joined', 10_000), 'home A runs');
  const token = JSON.parse(runCli(['invite', '--data', dirs.a, '--user', 'bob', '--json']).stdout).token;
  run('b', ['join', token, ...flags('b')]);
  assert.ok(await eventually(() => status(dirs.b).state === 'joined', 15_000), 'home B joined');
  /** Stops a home's peer as its service manager would (SIGTERM) and starts it again on the same ports. */
  const restart = async (home: 'a' | 'b') => {
    peers[home].child.kill('SIGTERM');
    await peers[home].exited;
    run(home, ['start', ...flags(home)]);
    assert.ok(await eventually(() => status(dirs[home]).state === 'joined', 15_000), `home ${home} joined again`);
  };
  return { dirs, sipPorts, status, restart };
}

/**
 * Two homes as above, with alice's SIPp phone registered at A and bob's at B (digest, password
 * USER-password), both found in the overlay; and the calls a test places between them.
 */
export async function homesWithPhones(root: string, running: Running[], domain: string, extra: string[] = []) {
  const homes = await startTwoHomes(root, running, domain, extra);
  const phones: Record<string, number> = {};
  const register = async (user: string, home: 'a' | 'b', expires = 3600, port?: number): Promise<void> => {
    const local = port ?? (await freeUdpPort());
    const run = runSipp('register-digest.xml', `127.0.0.1:${homes.sipPorts[home]}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', String(expires), '-p', String(local), '-t', 'u1'], root);
    assert.equal(run.code, 0, run.errors);
    phones[user] = local;
  };
  assert.equal(runCli(['user', 'add', 'alice', '--password', 'alice-password', '--data', homes.dirs.a]).code, 0);
  assert.equal(runCli(['user', 'add', 'bob', '--password', 'bob-password', '--data', homes.dirs.b]).code, 0);
  await register('alice', 'a');
  await register('bob', 'b');
  const found = (user: string, from: string) => runCli(['lookup', `sip:${user}@${domain}`, '--data', from]).code === 0;
  assert.ok(await eventually(() => found('bob', homes.dirs.a) && found('alice', homes.dirs.b), 10_000), 'both users are found in the overlay');
  /** `from`'s phone calls `callee` through `home`; `values` fill a scenario template. */
  const call = (from: string, home: 'a' | 'b', callee: string, scenario = 'uac-call.xml', values: Record<string, string> = {}) =>
    runSipp(Object.keys(values).length ? scenarioFrom(scenario, values, root) : scenario, `127.0.0.1:${homes.sipPorts[home]}`, ['-s', from, '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones[from]), '-t', 'u1'], root);
  /** The same from another registered phone of `from` (its SIP port `port`). */
  const callFrom = (port: number, from: string, home: 'a' | 'b', callee: string, scenario: string, values: Record<string, string> = {}) =>
    runSipp(Object.keys(values).length ? scenarioFrom(scenario, values, root) : scenario, `127.0.0.1:${homes.sipPorts[home]}`, ['-s', from, '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(port), '-t', 'u1'], root);
  /** `call`, in the background: resolves when the caller's scenario ends. */
  const callAsync = (from: string, home: 'a' | 'b', callee: string, scenario: string, values: Record<string, string>) =>
    startSipp(scenarioFrom(scenario, values, root), [`127.0.0.1:${homes.sipPorts[home]}`, '-s', from, '-set', 'domain', domain, '-set', 'callee', callee, '-p', String(phones[from]), '-t', 'u1'], root).done;
  /** `user`'s phone waits for a call and plays `scenario`. */
  const waits = (user: string, scenario: string, values: Record<string, string>) => startSipp(scenarioFrom(scenario, values, root), ['-p', String(phones[user]), '-t', 'u1'], root);
  return { ...homes, phones, register, call, callFrom, callAsync, waits };
}

/**
 * One open-mode home on loopback (flags `extra`), alice's and bob's SIPp phones registered with
 * digest; `call` plays a scenario as alice calling bob, `bobWaits` one as bob's phone.
 */
export async function homeWithAliceAndBob(root: string, running: Running[], domain: string, name: string, extra: string[]) {
  const dir = `${root}/${name}`;
  const sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort), '--sip-digest', 'MD5', ...extra]));
  const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;
  assert.ok(await eventually(() => sip()?.address === `127.0.0.1:${sipPort}`, 10_000));
  const phones: Record<string, number> = {};
  for (const user of ['alice', 'bob']) {
    assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', dir]).code, 0);
    phones[user] = await freeUdpPort();
    const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', domain, '-set', 'expires', '3600', '-p', String(phones[user]), '-t', 'u1'], root);
    assert.equal(run.code, 0, run.errors);
  }
  const call = (scenario: string, values: Record<string, string>, timeoutSeconds: number) =>
    runSipp(Object.keys(values).length ? scenarioFrom(scenario, values, root) : scenario, `127.0.0.1:${sipPort}`, ['-s', 'alice', '-set', 'domain', domain, '-set', 'callee', 'bob', '-p', String(phones.alice), '-t', 'u1'], root, timeoutSeconds);
  const bobWaits = (scenario: string, values: Record<string, string>, timeoutSeconds: number) => startSipp(scenarioFrom(scenario, values, root), ['-p', String(phones.bob), '-t', 'u1'], root, timeoutSeconds);
  return { dir, sip, call, bobWaits };
}
