import { resourceId } from '../../../identity/ids.js';
import type { P2psipError } from '../../../runtime/errors.js';
import type { KindDefinition } from '../../../storage/kind.js';
import type { StorageClient } from '../../../storage/storage-client.js';
import { type Id, idFromBytes } from '../../../wire/id.js';
import { decodeSipRegistration, type SipRegistration } from './sip-registration.js';

/*
 * An AOR's SIP-REGISTRATION entries as the overlay holds them (RFC 7904 s3), each already
 * checked against its signer's certificate and the kind's policy by the storage client. A value
 * that passed those checks but is no registration (its user may store anything there) is
 * counted with the rejected ones rather than believed.
 */
export interface FoundRegistration {
  /** The dictionary key: the Node-ID of the node that registered. */
  readonly node: Id | undefined;
  /** The signer's certificate, as stored. */
  readonly certificate: Uint8Array;
  readonly registration: SipRegistration;
  readonly expiresAtMs: number;
}

export function fetchRegistrations(
  storage: StorageClient,
  kind: KindDefinition,
  aor: string,
  done: (error: P2psipError | Error | undefined, found?: { registrations: FoundRegistration[]; rejected: number }) => void,
): void {
  storage.fetch(kind, resourceId(aor), { all: true }, (error, result) => {
    if (error || !result) return done(error ?? new Error('no answer'));
    let rejected = result.rejected;
    const registrations: FoundRegistration[] = [];
    for (const value of result.values) {
      if (!value.entry.exists) continue;
      try {
        registrations.push({
          node: value.entry.key instanceof Uint8Array && value.entry.key.length === 16 ? idFromBytes(value.entry.key) : undefined,
          certificate: value.certificate,
          registration: decodeSipRegistration(value.entry.value),
          expiresAtMs: Number(value.storageTime) + value.lifetime * 1000,
        });
      } catch {
        rejected++;
      }
    }
    done(undefined, { registrations, rejected });
  });
}
