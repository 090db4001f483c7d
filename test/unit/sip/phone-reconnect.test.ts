import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reconnectAddress } from '../../../src/usages/sip/proxy/phone-reconnect.js';
import type { Binding } from '../../../src/usages/sip/registrar/location.js';
import type { SipFlow } from '../../../src/usages/sip/transport/sip-transport.js';

/* Where a phone whose TCP connection closed may be reached again: only where it said it listens, on its own host. */
const tcpFrom = (host: string): SipFlow => ({ transport: 'TCP', remote: { host, port: 40123 }, connectionId: 7 });
const binding = (contact: string, flow: SipFlow, params?: [string, string | null][]): Binding => ({ contact, flow, expiresAt: 1, callId: 'c', cseq: 1, q: undefined, ...(params ? { params: new Map(params) } : {}) });

test("a phone on TCP that names its own host and ;transport=tcp is reached at its Contact's port (5060 when it names none)", () => {
  assert.deepEqual(reconnectAddress(binding('sip:carol@192.168.1.20:5062;transport=tcp', tcpFrom('192.168.1.20'))), { host: '192.168.1.20', port: 5062 });
  assert.deepEqual(reconnectAddress(binding('sip:carol@192.168.1.20;transport=TCP', tcpFrom('192.168.1.20'))), { host: '192.168.1.20', port: 5060 });
  assert.deepEqual(reconnectAddress(binding('sip:carol@[fd00::20]:5062;transport=tcp', tcpFrom('fd00::20'))), { host: 'fd00::20', port: 5062 });
});

test('no new connection for a Contact on another host, without ;transport=tcp, sips, a host name, an outbound phone or a flow that is not TCP', () => {
  const from = tcpFrom('192.168.1.20');
  assert.equal(reconnectAddress(binding('sip:carol@192.168.1.99:5062;transport=tcp', from)), undefined, 'another host: a stranger, or a phone behind another NAT');
  assert.equal(reconnectAddress(binding('sip:carol@192.168.1.20:5062', from)), undefined, 'a Contact without transport names UDP');
  assert.equal(reconnectAddress(binding('sips:carol@192.168.1.20:5061;transport=tcp', from)), undefined);
  assert.equal(reconnectAddress(binding('sip:carol@phone.lan:5062;transport=tcp', from)), undefined);
  assert.equal(reconnectAddress(binding('sip:carol@192.168.1.20:5062;transport=tcp', from, [['reg-id', '1']])), undefined, 'RFC 5626 s5.3');
  assert.equal(reconnectAddress(binding('sip:carol@192.168.1.20:5062;transport=tcp', { transport: 'UDP', remote: { host: '192.168.1.20', port: 5062 } })), undefined);
  assert.equal(reconnectAddress(binding('not a uri', from)), undefined);
});

test('hosts are compared as addresses: an IPv4 phone seen as ::ffff:a.b.c.d under --bind ::, and IPv6 however it is written (review R3, S2)', () => {
  assert.deepEqual(reconnectAddress(binding('sip:carol@192.168.1.20:5062;transport=tcp', tcpFrom('::ffff:192.168.1.20'))), { host: '::ffff:192.168.1.20', port: 5062 });
  assert.deepEqual(reconnectAddress(binding('sip:carol@[FD00:0:0::20]:5062;transport=tcp', tcpFrom('fd00::20'))), { host: 'fd00::20', port: 5062 });
  assert.equal(reconnectAddress(binding('sip:carol@192.168.1.21:5062;transport=tcp', tcpFrom('::ffff:192.168.1.20'))), undefined);
});
