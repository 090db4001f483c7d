import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStatus } from '../../../src/cli/format.js';

/*
 * The status page as an operator reads it. Its NAT line is what a family checks when calls fail,
 * so it names the public address as STUN answered it, not the shape of the JSON behind it.
 */
const status = (nat: unknown) => ({ nodeId: 'ab', overlay: 'smiths.example', mode: 'authority', address: '127.0.0.1:6085', state: 'joined', uptimeSeconds: 3, successors: [], predecessors: [], fingers: [], nat, counters: {}, router: {}, transport: {} });

test('the NAT line names each public address STUN reported, once, however many servers saw it', () => {
  const page = formatStatus(
    status({
      reflexive: [
        { server: '127.0.0.1:6084', mapped: '203.0.113.5:6085' },
        { server: '127.0.0.1:6086', mapped: '203.0.113.5:6085' },
      ],
      behavior: null,
      relay: { state: 'none', relayed: null },
    }),
  );
  assert.match(page, /^nat {8}public 203\.0\.113\.5:6085; not measured yet; relay none$/m);
  assert.doesNotMatch(page, /object Object/);
});

test('before any STUN answer, the NAT line says the address is not learned yet', () => {
  const page = formatStatus(status({ reflexive: [], behavior: null, relay: { state: 'none', relayed: null } }));
  assert.match(page, /^nat {8}public address not learned yet;/m);
});

test('a phone whose logins are refused shows on the status page: how many, whose, why', () => {
  const sip = { server: '192.168.1.2:5060', realm: 'smiths.example', auth: 'digest SHA-256,MD5', invites: 'challenged', bindings: 0, users: 0, registrar: { authFailures: 15, lastAuthFailure: { user: 'dan', reason: 'wrong password', secondsAgo: 4 } } };
  const page = formatStatus({ ...status({ reflexive: [], behavior: null, relay: { state: 'none', relayed: null } }), sip });
  assert.match(page, /^ {11}15 login\(s\) refused; the last for dan \(wrong password\), 4 s ago$/m);
  assert.match(page, /; 0 phone\(s\) registered, for 0 user\(s\);/, 'says phones registered, not that the home has no users');
  assert.doesNotMatch(formatStatus({ ...status({ reflexive: [], behavior: null, relay: { state: 'none', relayed: null } }), sip: { ...sip, registrar: { authFailures: 0, lastAuthFailure: null } } }), /refused/);
});
