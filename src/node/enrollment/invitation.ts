import { P2psipError } from '../../runtime/errors.js';
import { type Address, decodeAddress, encodeAddress } from '../../wire/address.js';
import { decodeCbor, encodeCbor } from '../../wire/cbor.js';
import { readArray, readBytes, readUint } from '../../wire/schema.js';

/*
 * An invitation token: what `p2psip invite` prints and `p2psip join` takes, as short text (and a
 * QR code). It names where to enroll, which authority to expect, and a one-time secret:
 *   token = "p2psip1:" base64url(CBOR [address, root-fingerprint, invitation-id, secret, expires])
 * The secret never crosses the network: the joiner proves it with an HMAC.
 */
export interface Invitation {
  readonly enrollAt: Address;
  /** keyFingerprint of the overlay's root authority: pins the configuration the joiner accepts. */
  readonly rootFingerprint: string;
  readonly id: Uint8Array;
  readonly secret: Uint8Array;
  /** Seconds since the epoch. */
  readonly expires: number;
}

export class InvitationError extends P2psipError {
  override readonly name = 'InvitationError';
}

const PREFIX = 'p2psip1:';
export const INVITATION_ID_BYTES = 8;
export const INVITATION_SECRET_BYTES = 16;

export function encodeInvitation(inv: Invitation): string {
  const fp = Buffer.from(inv.rootFingerprint, 'base64url');
  return PREFIX + Buffer.from(encodeCbor([encodeAddress(inv.enrollAt), fp, inv.id, inv.secret, inv.expires])).toString('base64url');
}

export function decodeInvitation(token: string): Invitation {
  const text = token.trim();
  if (!text.startsWith(PREFIX)) throw new InvitationError('not a p2psip invitation (it starts with p2psip1:)');
  try {
    const path = '$.invitation';
    const [address, fp, id, secret, expires] = readArray(decodeCbor(Buffer.from(text.slice(PREFIX.length), 'base64url'), 256, path), path, 5, 5);
    return {
      enrollAt: decodeAddress(address, `${path}.address`),
      rootFingerprint: Buffer.from(readBytes(fp, `${path}.fingerprint`, 12, 12)).toString('base64url'),
      id: readBytes(id, `${path}.id`, INVITATION_ID_BYTES, INVITATION_ID_BYTES),
      secret: readBytes(secret, `${path}.secret`, INVITATION_SECRET_BYTES, INVITATION_SECRET_BYTES),
      expires: readUint(expires, `${path}.expires`),
    };
  } catch (error) {
    // Said for the person holding it (a token cut short when copied, most likely); the decoder's words go last.
    throw new InvitationError(`invitation is damaged or cut short: copy all of it again, one line starting with ${PREFIX} (${(error as Error).message})`);
  }
}
