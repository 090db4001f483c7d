import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogPolicy } from '../../../src/runtime/log.js';

test('P2PSIP_LOG sets a level for a component and everything under it, the nearest setting winning', () => {
  const policy = LogPolicy.parse('p2psip.nat:debug,p2psip.nat.relay:error,p2psip.node:bogus', 'warn');
  assert.equal(policy.allows('p2psip.nat', 'debug'), true);
  assert.equal(policy.allows('p2psip.nat.stun', 'debug'), true, 'a child takes its parent\'s level');
  assert.equal(policy.allows('p2psip.nat.relay', 'warn'), false, 'its own setting wins over the parent\'s');
  assert.equal(policy.allows('p2psip.nat.relay.server', 'error'), true);
  assert.equal(policy.allows('p2psip.natural', 'info'), false, 'a name that only starts alike is not a child');
  assert.equal(policy.allows('p2psip.node', 'info'), false, 'an unknown level is ignored');
  assert.equal(policy.allows('p2psip', 'warn'), true);
});

test('a bare level sets the default for every component', () => {
  const policy = LogPolicy.parse('info');
  assert.equal(policy.allows('p2psip.overlay', 'info'), true);
  assert.equal(policy.allows('p2psip.overlay', 'debug'), false);
});
