import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHANGE_PORT, discoverBehavior, type NatBehavior } from '../../../src/nat/behavior-discovery.js';
import { seal } from '../../../src/nat/stun/integrity.js';
import { Attr, decodeStun, encodePlainAddress, encodeStun, encodeXorAddress, StunClass, StunMethod } from '../../../src/nat/stun/message.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * RFC 5780 s4.3-4.5 classification from what the probes saw (the lab runs it on real NATs):
 * one scripted NAT per case.
 */
const HOST = { host: '198.19.1.2', port: 6084 };
const PRIMARY = { host: '198.18.0.1', port: 6084 };
const OTHER = { host: '198.18.0.2', port: 6084 };

function answer(mapped: Address, other?: Address) {
  const id = new Uint8Array(12);
  return decodeStun(seal(encodeStun(StunMethod.Binding, StunClass.Success, id, [{ type: Attr.XorMappedAddress, value: encodeXorAddress(mapped, id) }, ...(other ? [{ type: Attr.OtherAddress, value: encodePlainAddress(other) }] : [])])));
}

function classify(nat: { mapped: (server: Address) => Address; passes: (flags: number) => boolean; hairpin: boolean }): NatBehavior {
  let result: NatBehavior | undefined;
  discoverBehavior(
    {
      host: HOST,
      binding: (server, flags, done) => done(flags === 0 || nat.passes(flags) ? answer(nat.mapped(server), OTHER) : undefined),
      hairpin: (_, done) => done(nat.hairpin),
    },
    PRIMARY,
    undefined,
    (b) => (result = b),
  );
  return result!;
}

test('full cone, address-restricted, port-restricted and symmetric NATs are told apart', () => {
  const fixed = () => ({ host: '198.18.0.11', port: 6084 });
  assert.deepEqual(pick(classify({ mapped: fixed, passes: () => true, hairpin: true })), ['endpoint-independent', 'endpoint-independent', true]);
  assert.deepEqual(pick(classify({ mapped: fixed, passes: (f) => f === CHANGE_PORT, hairpin: false })), ['endpoint-independent', 'address-dependent', false]);
  assert.deepEqual(pick(classify({ mapped: fixed, passes: () => false, hairpin: false })), ['endpoint-independent', 'address-and-port-dependent', false]);
  const perServer = (server: Address) => ({ host: '198.18.0.14', port: server.host === PRIMARY.host ? 40001 : 40002 });
  assert.deepEqual(pick(classify({ mapped: perServer, passes: () => false, hairpin: false })), ['endpoint-dependent', 'address-and-port-dependent', false]);

});

test('no NAT at all: the server sees our own address', () => {
  assert.deepEqual(pick(classify({ mapped: () => HOST, passes: () => true, hairpin: false })), ['none', 'none', null]);
});

function pick(b: NatBehavior) {
  return [b.mapping, b.filtering, b.hairpinning];
}
