import { parseCertificate } from '../identity/certificate.js';
import { resourceId } from '../identity/ids.js';
import type { KindRegistry } from '../storage/kind.js';
import type { StorageClient } from '../storage/storage-client.js';
import { UsageError } from '../runtime/errors.js';
import type { SipService } from '../usages/sip/sip-service.js';
import { fetchRegistrations } from '../usages/sip/overlay/registrations.js';
import { aorOf, parseSipUri } from '../usages/sip/message/uri.js';
import { addressKey } from '../wire/address.js';
import { idToHex } from '../wire/id.js';

/*
 * `p2psip lookup sip:NAME@DOMAIN`: where a user is registered. Fetches the AOR's
 * SIP-REGISTRATION record from the overlay (each value checked against its signer's
 * certificate and the USER-NODE-MATCH policy, RFC 7904 s3.2) and, when the user's phones are
 * registered at this very peer, lists their bindings too.
 */
export interface LookupAnswer {
  aor: string;
  resourceId: string;
  registrations: { node: string; signer: string; destinations: string[]; uri: string | null; expiresInSeconds: number }[];
  rejected: number;
  local: { contact: string; transport: string; source: string; expiresInSeconds: number }[];
}

export function lookupUser(target: string, client: StorageClient, kinds: KindRegistry, sip: SipService | undefined, nowMs: number): Promise<LookupAnswer> {
  let aor: string;
  try {
    const uri = parseSipUri(target.includes(':') ? target : `sip:${target}`);
    if (!uri.user) throw new UsageError('lookup needs a user: sip:NAME@DOMAIN');
    aor = aorOf(uri);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`lookup needs sip:NAME@DOMAIN: ${(error as Error).message}`);
  }
  const kind = kinds.named('SIP-REGISTRATION');
  if (!kind) throw new UsageError('this overlay has no SIP-REGISTRATION kind');
  const resource = resourceId(aor);
  const local = (sip?.location.bindings(aor) ?? []).map((b) => ({
    contact: b.contact,
    transport: b.flow.transport,
    source: addressKey(b.flow.remote),
    expiresInSeconds: Math.round((b.expiresAt - nowMs) / 1000),
  }));
  return new Promise((resolve, reject) => {
    fetchRegistrations(client, kind, aor, (error, found) => {
      if (error || !found) return reject(error ?? new Error('no answer'));
      const registrations = found.registrations.map(({ node, certificate, registration, expiresAtMs }) => ({
        node: node === undefined ? '' : idToHex(node),
        signer: parseCertificate(certificate).claims.subject,
        destinations: registration.type === 'route' ? registration.destinations.map((d) => idToHex(d.id)) : [],
        uri: registration.type === 'uri' ? registration.uri : null,
        expiresInSeconds: Math.round((expiresAtMs - nowMs) / 1000),
      }));
      resolve({ aor, resourceId: idToHex(resource), registrations, rejected: found.rejected, local });
    });
  });
}
