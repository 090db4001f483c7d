import { nodeResourceId } from '../../src/storage/access-control.js';
import { resourceId } from '../../src/identity/ids.js';
import type { NodeIdentity } from '../../src/identity/identity.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { signValue } from '../../src/storage/value-signing.js';
import type { EntryKey, StoredData } from '../../src/wire/messages/stored-data.js';
import { idToBytes } from '../../src/wire/id.js';
import { FIXED_NOW_SECONDS } from './fixtures.js';

export const NOW_MS = FIXED_NOW_SECONDS * 1000;

export function value(identity: NodeIdentity, resource: bigint, kind: number, key: EntryKey, text: string, opts: { time?: number; lifetime?: number } = {}): StoredData {
  return signValue(ed25519Suite, identity, resource, kind, { key, exists: true, value: new TextEncoder().encode(text) }, BigInt(opts.time ?? NOW_MS), opts.lifetime ?? 3600);
}

export function userResource(identity: NodeIdentity): bigint {
  return resourceId(identity.certificate.claims.subject);
}

export function nodeResource(identity: NodeIdentity): bigint {
  return nodeResourceId(identity.nodeId);
}

export function nodeKey(identity: NodeIdentity): Uint8Array {
  return idToBytes(identity.nodeId);
}
