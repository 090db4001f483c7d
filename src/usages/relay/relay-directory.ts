import { directoryResourceId } from '../../storage/access-control.js';
import type { NodeIdentity } from '../../identity/identity.js';
import type { P2psipError } from '../../runtime/errors.js';
import type { KindDefinition } from '../../storage/kind.js';
import type { StorageClient } from '../../storage/storage-client.js';
import { type Address, decodeAddress, encodeAddress } from '../../wire/address.js';
import { decodeCbor, encodeCbor } from '../../wire/cbor.js';
import { type Id, idFromBytes, idToBytes } from '../../wire/id.js';
import { readArray, readUint } from '../../wire/schema.js';

/*
 * Relays are found by name (RFC 7890 s3; RFC 6940 s9 does the same for TURN servers): each
 * relay peer keeps one entry, keyed by its Node-ID, in the RELAY-SERVICE dictionary at the
 * Resource-ID of the well-known name below, and renews it before it expires. A node behind a
 * NAT fetches that one resource to learn every relay, checked like any stored value.
 *
 *   relay-entry = [address, free-allocations: uint]
 */
/** Where the directory is: its kind's name in lower case, as for every NODE-KEYED kind (access-control.ts). */
export const RELAY_SERVICE_NAME = 'relay-service';
const LIFETIME_SECONDS = 600;

export interface RelayEntry {
  readonly nodeId: Id;
  readonly address: Address;
  readonly free: number;
}

export function announceRelay(storage: StorageClient, kind: KindDefinition, identity: NodeIdentity, address: Address, free: number, done: (error: P2psipError | undefined) => void): void {
  const value = encodeCbor([encodeAddress(address), free]);
  storage.store(kind, directoryResourceId(kind), [{ key: idToBytes(identity.nodeId), exists: true, value }], LIFETIME_SECONDS, (error) => done(error));
}

/** Renew this often, well within the entry's lifetime. */
export const ANNOUNCE_INTERVAL_MS = (LIFETIME_SECONDS * 1000) / 3;

export function findRelays(storage: StorageClient, kind: KindDefinition, done: (error: P2psipError | Error | undefined, relays?: RelayEntry[]) => void): void {
  storage.fetch(kind, directoryResourceId(kind), { all: true }, (error, result) => {
    if (error || !result) return done(error ?? new Error('no answer'));
    const relays: RelayEntry[] = [];
    for (const value of result.values) {
      if (!value.entry.exists || !(value.entry.key instanceof Uint8Array)) continue;
      try {
        const [address, free] = readArray(decodeCbor(value.entry.value, 128, '$.relay'), '$.relay', 2, 2);
        relays.push({ nodeId: idFromBytes(value.entry.key), address: decodeAddress(address, '$.relay[0]'), free: readUint(free, '$.relay[1]') });
      } catch {
        // a value its node may store but that is no relay entry: not believed
      }
    }
    // Most room first, so that nodes spread over the relays.
    done(undefined, relays.sort((a, b) => b.free - a.free));
  });
}
