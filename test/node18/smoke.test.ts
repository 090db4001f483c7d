import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bundleRuntime, eventually, processLab, runCli, startProcess, freeUdpPort } from '../helpers/processes.js';
import { homesWithPhones } from '../helpers/sip-homes.js';
import { SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';

/*
 * The bundle on the Node and CPU that P2PSIP_NODE names (scripts/node18-smoke.mjs runs this with
 * Node 18 for x86-64, and for arm64 and armv7 under qemu-user): three enrolled peers, two SIPp
 * phones registered with digest, and a call between homes answered and ended.
 */
const { root, running } = processLab('p2psip-node18-');
const domain = 'smoke.example';

test(`three peers, two phones and a call on ${process.env.P2PSIP_NODE ? bundleRuntime() : 'this Node'}`, { skip: SKIP_WITHOUT_SIPP, timeout: 600_000 }, async () => {
  console.log(`bundle runs on ${bundleRuntime()}`);
  const homes = await homesWithPhones(root, running, domain);
  const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);
  const token = JSON.parse(runCli(['invite', '--data', homes.dirs.a, '--user', 'carol', '--json']).stdout).token;
  const third = `${root}/c`;
  running.push(startProcess(['join', token, '--data', third, '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort())]));
  assert.ok(await eventually(() => status(third).state === 'joined', 20_000), 'the third peer joined');
  const bob = homes.waits('bob', 'uas-answer.xml', { ANSWER_MS: '200' });
  const call = homes.call('alice', 'a', 'bob');
  assert.equal(call.code, 0, call.errors);
  assert.equal((await bob.done).code, 0);
});
