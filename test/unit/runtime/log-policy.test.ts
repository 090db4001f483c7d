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

test('a field a peer chose (a SIP user name) cannot forge a log line or drive the terminal: controls are escaped', async () => {
  const { createLogger } = await import('../../../src/runtime/log.js');
  const lines: string[] = [];
  const log = createLogger('p2psip', LogPolicy.parse('warn'), (line) => lines.push(line), () => 0);
  log.warn('sip-auth-failed', { user: 'eve\nWARN p2psip forged=1\u001b[31m\u202e', plain: 'alice' });
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0], /[\n\u001b\u202e]/);
  assert.match(lines[0], /user="eve\\nWARN p2psip forged=1\\u001b\[31m\\u202e" plain=alice/);
});
