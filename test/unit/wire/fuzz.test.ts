import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../../src/runtime/random.js';
import { encodeCbor } from '../../../src/wire/cbor.js';
import { DecodeError } from '../../../src/wire/decode-error.js';
import { decodeFrame } from '../../../src/wire/frame.js';
import { decodePayload } from '../../../src/wire/payload.js';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { bodyVectors, frameVectors } from '../../vectors/cases.js';
import { decodeSecurityFrame } from '../../../src/wire/link-security.js';
import { SealedLink } from '../../../src/link/secure/sealed-link.js';
import { createOpenIdentity } from '../../../src/identity/open-identity.js';
import { OpenTrustPolicy } from '../../../src/identity/trust.js';
import { ed25519Suite } from '../../../src/identity/signature-suite.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Link } from '../../../src/link/link.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * 100,000+ random and mutated inputs to every decoder. Each must either decode or throw a
 * DecodeError: any other exception (TypeError, RangeError, out of memory) is a bug.
 */
const random = new SeededRandom(20261124);
const seeds = [...Object.values(frameVectors), ...Object.values(bodyVectors).map((v) => v.codec.encode(v.value))];
const decoders: [string, (b: Uint8Array) => unknown][] = [
  ['frame', decodeFrame],
  ['payload', decodePayload],
  ['certificate', parseCertificate],
  ['link-security', decodeSecurityFrame],
  ...Object.entries(bodyVectors).map(([name, v]): [string, (b: Uint8Array) => unknown] => [name, (b) => v.codec.decode(b)]),
];

function mutate(input: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(input);
  const kind = random.u32() % 5;
  if (kind === 0) {
    for (let i = 0; i < 1 + (random.u32() % 4); i++) bytes[random.u32() % bytes.length] = random.u32() & 0xff;
    return bytes;
  }
  if (kind === 1) return bytes.subarray(0, random.u32() % bytes.length);
  if (kind === 2) {
    const at = random.u32() % bytes.length;
    return new Uint8Array([...bytes.subarray(0, at), ...random.bytes(1 + (random.u32() % 8)), ...bytes.subarray(at)]);
  }
  if (kind === 3) {
    // A plausible CBOR head claiming a huge length.
    const heads = [0x9b, 0x5b, 0x7b, 0xbb, 0x9a, 0x5a, 0xda];
    return new Uint8Array([heads[random.u32() % heads.length], ...random.bytes(8), ...bytes.subarray(0, 16)]);
  }
  return random.bytes(1 + (random.u32() % 64));
}

test('the decoders survive 100,000 random and mutated inputs with only DecodeErrors', () => {
  let decoded = 0;
  let rejected = 0;
  const total = 100_000;
  for (let i = 0; i < total; i++) {
    const input = i % 10 === 0 ? random.bytes(random.u32() % 200) : mutate(seeds[random.u32() % seeds.length]);
    const [name, decode] = decoders[i % decoders.length];
    try {
      decode(input);
      decoded++;
    } catch (error) {
      if (!(error instanceof DecodeError)) assert.fail(`${name} threw ${(error as Error).name}: ${(error as Error).message} on ${Buffer.from(input).toString('hex')}`);
      rejected++;
    }
  }
  assert.equal(decoded + rejected, total);
  assert.ok(rejected > total * 0.5, 'most mutations must be rejected');
});

test('structurally valid CBOR of the wrong shape is rejected, never half-accepted', () => {
  const shapes: unknown[] = [[], [0], [0, 1, 2, 3, 4], [0, 1, new Uint8Array(16), []], [[[[[[1]]]]]], 'frame', true, null, new Uint8Array(4)];
  for (const shape of shapes) assert.throws(() => decodeFrame(encodeCbor(shape)), DecodeError);
});

test('a sealed link fed 20,000 mutated datagrams delivers none of them and never throws', () => {
  const clock = new VirtualClock();
  let handler: (from: Address, datagram: Uint8Array) => void = () => {};
  const inner: Link = { localAddress: { host: '127.0.0.1', port: 1 }, send: () => {}, onDatagram: (h) => void (handler = h), close: async () => {} };
  const identity = createOpenIdentity(new Uint8Array(32).fill(3), 'fuzz', 'test.p2psip', Math.floor(clock.wallTime() / 1000));
  const link = new SealedLink(inner, { identity, trust: new OpenTrustPolicy('test.p2psip'), suite: ed25519Suite, clock, random, log: silentLogger, overlayId: 1 });
  let delivered = 0;
  link.onDatagram((_from, datagram) => {
    if (datagram[0] > 0x03) delivered++; // only STUN-looking input is passed up, for the transport to judge
  });
  for (let i = 0; i < 20_000; i++) handler({ host: '127.0.0.2', port: 1 + (i % 50) }, mutate(seeds[random.u32() % seeds.length]));
  assert.equal(delivered, 0);
  const c = link.counters;
  assert.ok(c.malformed + c.plaintextRefused + c.unknownSessions + c.handshakesRefused + c.rateLimited > 15_000);
});
