import { hkdfSync } from 'node:crypto';
import { type EphemeralKey, ephemeralFromBytes, sharedSecret } from '../../link/secure/link-crypto.js';
import type { Random } from '../../runtime/random.js';

/*
 * An allocation's key is agreed, never sent: the node's Allocate carries an X25519 share
 * (KEY-SHARE), the relay's answer carries its own, and each side derives the key from the two
 * and from a secret of the sealed link between them (RELAY_LINK_LABEL), with HKDF bound to the
 * Allocate's transaction ID and both shares. Someone who watches the answer go by (and can forge
 * the node's address) learns nothing that ends or uses the allocation; before, the key itself
 * travelled in that answer. The Allocate and its answers carry MESSAGE-INTEGRITY under the link's
 * secret, so a host that passes the link's datagrams along can neither allocate as the node nor
 * answer for the relay.
 */
export const RELAY_LINK_LABEL = 'p2psip relay allocate';

export function newKeyShare(random: Random): EphemeralKey {
  return ephemeralFromBytes(random.bytes(32));
}

/** The allocation's 32-byte key; throws when `theirs` is no X25519 share. */
export function allocationKey(own: EphemeralKey, theirs: Uint8Array, linkSecret: Uint8Array, transactionId: Uint8Array, ownRole: 'node' | 'relay'): Uint8Array {
  const [nodeShare, relayShare] = ownRole === 'node' ? [own.publicKey, theirs] : [theirs, own.publicKey];
  const info = Buffer.concat([Buffer.from('p2psip relay allocation key'), nodeShare, relayShare]);
  return new Uint8Array(hkdfSync('sha256', Buffer.concat([sharedSecret(own, theirs), linkSecret]), transactionId, info, 32));
}
