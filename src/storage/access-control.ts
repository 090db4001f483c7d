import { createHash } from 'node:crypto';
import type { Certificate } from '../identity/certificate.js';
import { resourceId } from '../identity/ids.js';
import { type Id, idFromBytes, idToBytes } from '../wire/id.js';
import type { EntryKey } from '../wire/messages/stored-data.js';
import type { KindDefinition } from './kind.js';

/*
 * RFC 6940 s7.3 access control policies, checked by the storing peer before it keeps a value
 * and again by a fetching node before it believes one. `resource` is where the value is stored,
 * `key` the slot within it, `signer` the certificate that signed the value.
 *
 *   USER-MATCH       resource = H(user name)
 *   NODE-MATCH       resource = H(Node-ID)
 *   USER-NODE-MATCH  resource = H(user name), dictionary key = Node-ID
 *   NODE-MULTIPLE    resource = H(Node-ID || i), 0 <= i < max-node-multiple
 *   NODE-KEYED       resource = H(kind name in lower case), dictionary key = Node-ID (ours: a
 *                    directory at a well-known name where each node may write only its own
 *                    entry; at that name only, or one node could fill any peer with entries)
 * H is SHA-256 truncated to 128 bits, as for every Resource-ID here.
 */
export function nodeResourceId(nodeId: Id): Id {
  return idFromBytes(createHash('sha256').update(idToBytes(nodeId)).digest());
}

export function nodeMultipleResourceId(nodeId: Id, index: number): Id {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index);
  return idFromBytes(createHash('sha256').update(idToBytes(nodeId)).update(i).digest());
}

/** The one Resource-ID of a NODE-KEYED kind: RELAY-SERVICE's directory is at "relay-service". */
export function directoryResourceId(kind: KindDefinition): Id {
  return resourceId(kind.name.toLowerCase());
}

/** Returns null when allowed, else the reason for Error_Forbidden. */
export function checkAccess(kind: KindDefinition, resource: Id, key: EntryKey, signer: Certificate): string | null {
  const { subject, nodeIds } = signer.claims;
  switch (kind.policy) {
    case 'USER-MATCH':
      return resource === resourceId(subject) ? null : `USER-MATCH: resource is not the hash of ${subject}`;
    case 'NODE-MATCH':
      return nodeIds.some((n) => nodeResourceId(n) === resource) ? null : 'NODE-MATCH: resource is not the hash of a Node-ID of the signer';
    case 'USER-NODE-MATCH': {
      if (resource !== resourceId(subject)) return `USER-NODE-MATCH: resource is not the hash of ${subject}`;
      if (!(key instanceof Uint8Array) || key.length !== 16) return 'USER-NODE-MATCH: the dictionary key must be a Node-ID';
      return nodeIds.includes(idFromBytes(key)) ? null : 'USER-NODE-MATCH: the dictionary key is not a Node-ID of the signer';
    }
    case 'NODE-KEYED':
      if (resource !== directoryResourceId(kind)) return `NODE-KEYED: ${kind.name} is stored at "${kind.name.toLowerCase()}" only`;
      if (!(key instanceof Uint8Array) || key.length !== 16) return 'NODE-KEYED: the dictionary key must be a Node-ID';
      return nodeIds.includes(idFromBytes(key)) ? null : 'NODE-KEYED: the dictionary key is not a Node-ID of the signer';
    case 'NODE-MULTIPLE': {
      const max = kind.maxNodeMultiple ?? 1;
      for (const n of nodeIds) for (let i = 0; i < max; i++) if (nodeMultipleResourceId(n, i) === resource) return null;
      return 'NODE-MULTIPLE: resource is not H(Node-ID || i) for the signer';
    }
  }
}
