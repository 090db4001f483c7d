import { AuthorityTrustPolicy } from '../../identity/authority-trust.js';
import { keyFingerprint } from '../../identity/ids.js';
import { type Certificate, CertificateError } from '../../identity/certificate.js';
import type { NodeIdentity } from '../../identity/identity.js';
import { type KeyPair, keyPairFromSeed, signBytes } from '../../identity/keys.js';
import type { Random } from '../../runtime/random.js';
import type { Address } from '../../wire/address.js';
import { saveConfig } from '../config/config-file.js';
import { ConfigError, openConfig, type OverlayConfig, type SignedConfig } from '../config/overlay-config.js';
import { saveIdentity } from '../identity-store.js';
import { EnrollmentRefused } from './enrollment-authority.js';
import { bytesEqualInConstantTime } from '../../runtime/constant-time.js';
import { answerMac, ENROLL, enrollMac, enrollProofInput, issuedOrRefused, NONCE_BYTES, RELEASE, releaseProofInput, RENEW, renewProofInput, USER, userProofInput } from './enrollment-protocol.js';
import { sendEnrollment } from './enrollment-transport.js';
import { decodeInvitation, InvitationError } from './invitation.js';

/**
 * `p2psip join TOKEN`: enroll this device once. A new key is made here and never leaves; the
 * authority sees only its public half, a proof of possession and an HMAC made with the
 * invitation's secret. What comes back is believed only when the HMAC matches and the
 * configuration is signed by the root the invitation named.
 */
export async function enrollWithInvitation(token: string, dir: string, random: Random, nowSeconds: number): Promise<{ identity: NodeIdentity; config: SignedConfig }> {
  const invitation = decodeInvitation(token);
  if (invitation.expires < nowSeconds) throw new InvitationError('invitation expired: ask for a new one');
  const keys = keyPairFromSeed(random.bytes(32));
  const nonce = random.bytes(NONCE_BYTES);
  const proof = signBytes(keys, enrollProofInput(invitation.id, keys.publicKey, nonce));
  const answer = issuedOrRefused(await sendEnrollment(invitation.enrollAt, {
    type: ENROLL,
    invitationId: invitation.id,
    publicKey: keys.publicKey,
    nonce,
    proof,
    mac: enrollMac(invitation.secret, invitation.id, keys.publicKey, nonce, proof),
  }));
  if (!answer.ok) throw new EnrollmentRefused(`enrollment refused: ${answer.reason}`);
  if (!answer.mac || !bytesEqualInConstantTime(answer.mac, answerMac(invitation.secret, nonce, answer.certificate, answer.config))) {
    throw new EnrollmentRefused('the enrollment answer is not from the inviting authority');
  }
  const config = openConfig(answer.config, invitation.rootFingerprint);
  const certificate = checkOwnCertificate(config.config, answer.certificate, keys.publicKey, nowSeconds);
  const identity = { nodeId: certificate.claims.nodeIds[0], keys, certificate };
  saveConfig(dir, config);
  saveIdentity(dir, 'authority', identity);
  return { identity, config };
}

/** Asks this node's issuer for a fresh certificate (same name, key and Node-IDs) before expiry. */
export async function renewCertificate(identity: NodeIdentity, config: OverlayConfig, random: Random, nowSeconds: number): Promise<Certificate> {
  const nonce = random.bytes(NONCE_BYTES);
  const certificate = identity.certificate.bytes;
  const answer = issuedOrRefused(await sendEnrollment(issuerAddress(identity, config), { type: RENEW, certificate, nonce, time: nowSeconds, proof: signBytes(identity.keys, renewProofInput(certificate, nonce, nowSeconds)) }));
  if (!answer.ok) throw new EnrollmentRefused(`renewal refused: ${answer.reason}`);
  const renewed = checkOwnCertificate(config, answer.certificate, identity.keys.publicKey, nowSeconds);
  if (renewed.claims.nodeIds[0] !== identity.nodeId) throw new EnrollmentRefused('renewal changed the Node-ID');
  return renewed;
}

/**
 * Asks the authority for a certificate for one of this home's users (`user add` at a joined
 * home): this home's certificate and a proof by its key say who asks; `userKeys` never leave.
 */
export async function requestUserCertificate(home: NodeIdentity, config: OverlayConfig, user: string, userKeys: KeyPair, random: Random, nowSeconds: number): Promise<Certificate> {
  const nonce = random.bytes(NONCE_BYTES);
  const certificate = home.certificate.bytes;
  const proof = signBytes(home.keys, userProofInput(certificate, user, userKeys.publicKey, nonce, nowSeconds));
  const answer = issuedOrRefused(await sendEnrollment(issuerAddress(home, config), { type: USER, certificate, user, userKey: userKeys.publicKey, nonce, time: nowSeconds, proof }));
  if (!answer.ok) throw new EnrollmentRefused(answer.reason);
  return checkOwnCertificate(config, answer.certificate, userKeys.publicKey, nowSeconds);
}

/**
 * Tells the authority that this home gives up `user` (`user remove`): the name is free for any
 * home and the user's certificates are revoked. Resolves once the authority agreed.
 */
export async function releaseUserAtAuthority(home: NodeIdentity, config: OverlayConfig, user: string, userKey: Uint8Array | undefined, random: Random, nowSeconds: number): Promise<void> {
  const nonce = random.bytes(NONCE_BYTES);
  const certificate = home.certificate.bytes;
  const proof = signBytes(home.keys, releaseProofInput(certificate, user, nonce, nowSeconds));
  const answer = await sendEnrollment(issuerAddress(home, config), { type: RELEASE, certificate, user, nonce, time: nowSeconds, proof });
  if (answer.ok !== 'released') throw new EnrollmentRefused(answer.ok ? 'the authority answered another request' : answer.reason);
  // Believed only as the root's own word: a configuration it signed that revokes the key we held
  // for the user (the link is plain TCP; nobody else can make such a document).
  const signed = openConfig(answer.config, keyFingerprint(config.authorities[0].publicKey));
  if (userKey && !signed.config.revoked.includes(keyFingerprint(userKey))) throw new EnrollmentRefused(`the authority's answer does not revoke ${user}'s certificate`);
}

/** Where the authority that issued `identity` takes enrollment requests (renewals, users). */
function issuerAddress(identity: NodeIdentity, config: OverlayConfig): Address {
  const { issuer } = identity.certificate.claims;
  const at = config.authorities.find((a) => a.name === issuer)?.enrollAt;
  if (!at) throw new ConfigError(`the configuration names no enrollment address for ${issuer}`);
  return at;
}

function checkOwnCertificate(config: OverlayConfig, bytes: Uint8Array, publicKey: Uint8Array, nowSeconds: number): Certificate {
  const certificate = new AuthorityTrustPolicy(config.overlay, config).accept(bytes, nowSeconds);
  if (Buffer.compare(certificate.claims.publicKey, publicKey) !== 0) throw new CertificateError('the certificate is for another key');
  return certificate;
}
