import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAccess, directoryResourceId, nodeMultipleResourceId, nodeResourceId } from '../../../src/storage/access-control.js';
import { KindRegistry } from '../../../src/storage/kind.js';
import { resourceId } from '../../../src/identity/ids.js';
import { idToBytes } from '../../../src/wire/id.js';
import { testIdentity } from '../../helpers/fixtures.js';

const kinds = new KindRegistry();
const alice = testIdentity(1);
const mallory = testIdentity(2);
const sub = (i: typeof alice) => i.certificate.claims.subject;

test('USER-MATCH: only the user named by the resource may store there', () => {
  const kind = kinds.named('DEBUG-NOTE')!;
  assert.equal(checkAccess(kind, resourceId(sub(alice)), 0, alice.certificate), null);
  assert.match(checkAccess(kind, resourceId(sub(alice)), 0, mallory.certificate) ?? '', /USER-MATCH/);
});

test('NODE-MATCH: only the node whose Node-ID hashes to the resource', () => {
  const kind = kinds.named('DEBUG-NODE')!;
  assert.equal(checkAccess(kind, nodeResourceId(alice.nodeId), null, alice.certificate), null);
  assert.match(checkAccess(kind, nodeResourceId(alice.nodeId), null, mallory.certificate) ?? '', /NODE-MATCH/);
});

test("USER-NODE-MATCH: the user's resource, and only under the signer's own Node-ID as key", () => {
  const kind = kinds.named('SIP-REGISTRATION')!;
  const resource = resourceId(sub(alice));
  assert.equal(checkAccess(kind, resource, idToBytes(alice.nodeId), alice.certificate), null);
  assert.match(checkAccess(kind, resource, idToBytes(mallory.nodeId), alice.certificate) ?? '', /not a Node-ID of the signer/);
  assert.match(checkAccess(kind, resource, idToBytes(mallory.nodeId), mallory.certificate) ?? '', /USER-NODE-MATCH: resource/);
  assert.match(checkAccess(kind, resource, 3, alice.certificate) ?? '', /must be a Node-ID/);
});

test('NODE-MULTIPLE: H(Node-ID || i) for i below the kind limit, and no further', () => {
  const kind = kinds.named('TURN-SERVICE')!;
  assert.equal(checkAccess(kind, nodeMultipleResourceId(alice.nodeId, 0), null, alice.certificate), null);
  assert.equal(checkAccess(kind, nodeMultipleResourceId(alice.nodeId, 3), null, alice.certificate), null);
  assert.match(checkAccess(kind, nodeMultipleResourceId(alice.nodeId, 4), null, alice.certificate) ?? '', /NODE-MULTIPLE/);
  assert.match(checkAccess(kind, nodeMultipleResourceId(alice.nodeId, 0), null, mallory.certificate) ?? '', /NODE-MULTIPLE/);
});

test('NODE-KEYED: at the directory\'s own name only ("relay-service" for RELAY-SERVICE), under the signer\'s own Node-ID', () => {
  const kind = kinds.named('RELAY-SERVICE')!;
  const directory = resourceId('relay-service');
  assert.equal(directoryResourceId(kind), directory);
  assert.equal(checkAccess(kind, directory, idToBytes(mallory.nodeId), mallory.certificate), null);
  assert.match(checkAccess(kind, directory, idToBytes(alice.nodeId), mallory.certificate) ?? '', /not a Node-ID of the signer/);
  // Anywhere else, one node could fill any peer it picks with entries of its own (and share a user's quota).
  assert.match(checkAccess(kind, resourceId(sub(alice)), idToBytes(mallory.nodeId), mallory.certificate) ?? '', /stored at "relay-service" only/);
  assert.match(checkAccess(kind, nodeResourceId(mallory.nodeId), idToBytes(mallory.nodeId), mallory.certificate) ?? '', /NODE-KEYED/);
});
