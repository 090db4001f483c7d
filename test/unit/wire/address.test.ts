import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalHost, sameHost } from '../../../src/wire/address.js';

/* One spelling per IP, so that addresses from sockets, SDP and SIP URIs compare as addresses. */
test('an address has one spelling: lower case, no brackets, IPv6 compressed, IPv4-mapped as IPv4', () => {
  assert.equal(canonicalHost('192.168.1.20'), '192.168.1.20');
  assert.equal(canonicalHost('::ffff:192.168.1.20'), '192.168.1.20');
  assert.equal(canonicalHost('[::FFFF:c0a8:114]'), '192.168.1.20');
  assert.equal(canonicalHost('[FD00:0:0:0:0:0:0:20]'), 'fd00::20');
  assert.equal(canonicalHost('fd00::20'), 'fd00::20');
  assert.equal(canonicalHost('Phone.LAN'), 'phone.lan');
  assert.ok(sameHost('::ffff:198.18.0.5', '198.18.0.5'));
  assert.ok(sameHost('[2001:DB8::1]', '2001:db8:0:0:0:0:0:1'));
  assert.ok(!sameHost('198.18.0.5', '198.18.0.6'));
  assert.ok(!sameHost('::1', '127.0.0.1'));
});
