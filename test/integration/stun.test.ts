import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { fingerprintValid, seal } from '../../src/nat/stun/integrity.js';
import { Attr, attribute, decodeStun, decodeXorAddress, encodeStun, StunClass, StunMethod } from '../../src/nat/stun/message.js';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';

/*
 * Every peer answers STUN on its overlay port (RFC 8489), beside the sealed overlay traffic:
 * coturn's turnutils_stunclient (an implementation nobody here wrote) learns its reflexive
 * address from it; unknown comprehension-required attributes get 420 (when that is no larger than the
 * request); indications get nothing.
 */
const { root, running } = processLab('p2psip-stun-');
const HAS_COTURN = spawnSync('turnutils_stunclient', [], { encoding: 'utf8' }).error === undefined;
const dir = `${root}/peer`;
let port = 0;

async function ask(request: Uint8Array): Promise<{ bytes: Uint8Array | undefined; localPort: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const localPort = socket.address().port;
  const reply = new Promise<Uint8Array | undefined>((resolve) => {
    socket.once('message', (m) => resolve(new Uint8Array(m)));
    setTimeout(() => resolve(undefined), 1000);
  });
  socket.send(request, port, '127.0.0.1');
  const bytes = await reply;
  socket.close();
  return { bytes, localPort };
}

test('a running peer answers coturn\'s STUN client on its overlay port with the reflexive address', { skip: HAS_COTURN ? false : 'coturn not installed (.ci/run installs it)' }, async () => {
  port = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(port)]));
  assert.ok(await eventually(() => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).state === 'joined', 10_000));
  const run = spawnSync('turnutils_stunclient', ['-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /UDP reflexive addr: 127\.0\.0\.1:\d+/);
  assert.ok(JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).stun.bindingsAnswered >= 1);
});

test('our Binding request gets our source address back: the plain answer alone when the request is small, with a valid fingerprint when padded to its size; 420 only when no larger than the request; silence for indications', { skip: HAS_COTURN ? false : 'needs the peer of the test above' }, async () => {
  const transactionId = new Uint8Array(12).fill(9);
  const small = await ask(seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, [])));
  const plain = decodeStun(small.bytes!);
  assert.equal(plain.klass, StunClass.Success);
  assert.equal(small.bytes!.length, 32, 'XOR-MAPPED-ADDRESS alone: no amplification');
  assert.deepEqual(decodeXorAddress(attribute(plain, Attr.XorMappedAddress)!.value, transactionId), { host: '127.0.0.1', port: small.localPort });
  const padded = await ask(seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, [{ type: Attr.Padding, value: new Uint8Array(56) }])));
  const full = decodeStun(padded.bytes!);
  assert.ok(fingerprintValid(padded.bytes!, full));
  assert.ok(attribute(full, Attr.Software));
  const unknown = await ask(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, [{ type: 0x0033, value: new Uint8Array(16) }]));
  const refusal = decodeStun(unknown.bytes!);
  assert.equal(refusal.klass, StunClass.Error);
  assert.deepEqual([...attribute(refusal, Attr.ErrorCode)!.value.subarray(2, 4)], [4, 20]);
  const tooSmall = await ask(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, [{ type: 0x0033, value: new Uint8Array(0) }]));
  assert.equal(tooSmall.bytes, undefined, 'a 420 larger than its request is not sent');
  const indication = await ask(encodeStun(StunMethod.Binding, StunClass.Indication, transactionId, []));
  assert.equal(indication.bytes, undefined);
});
