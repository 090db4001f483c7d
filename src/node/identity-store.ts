import path from 'node:path';
import { parseCertificate } from '../identity/certificate.js';
import type { NodeIdentity } from '../identity/identity.js';
import { keyPairFromSeed, publicKeyObject } from '../identity/keys.js';
import { createOpenIdentity } from '../identity/open-identity.js';
import type { Random } from '../runtime/random.js';
import { P2psipError } from '../runtime/errors.js';
import { readArray, readBytes, readText } from '../wire/schema.js';
import { readCborFile, writeCborFile } from './cbor-file.js';

/*
 * The node's identity on disk: DIR/identity.cbor = [mode: tstr, seed: bstr, certificate: bstr],
 * written atomically (temp file, fsync by rename) and readable only by its owner.
 */
const FILE = 'identity.cbor';

export class IdentityMissingError extends P2psipError {
  override readonly name = 'IdentityMissingError';
}

export interface StoredIdentity {
  readonly mode: 'open' | 'authority';
  readonly identity: NodeIdentity;
}

export function loadIdentity(dir: string): StoredIdentity | undefined {
  const value = readCborFile(path.join(dir, FILE), 8192);
  if (value === undefined) return undefined;
  const [mode, seed, certificate] = readArray(value, '$.identity', 3, 3);
  const modeText = readText(mode, '$.identity.mode', 16);
  const keys = keyPairFromSeed(readBytes(seed, '$.identity.seed', 32, 32));
  const certBytes = readBytes(certificate, '$.identity.certificate', 1, 4096);
  const parsed = parseCertificate(certBytes);
  const cert = { claims: parsed.claims, bytes: certBytes, publicKey: publicKeyObject(parsed.claims.publicKey) };
  return {
    mode: modeText === 'open' ? 'open' : 'authority',
    identity: { nodeId: parsed.claims.nodeIds[0], keys, certificate: cert },
  };
}

/** Open mode: make (once) and keep a self-issued identity. */
export function loadOrCreateOpenIdentity(dir: string, overlay: string, random: Random, nowSeconds: number): StoredIdentity {
  const existing = loadIdentity(dir);
  if (existing) {
    if (existing.identity.certificate.claims.overlay !== overlay) {
      throw new P2psipError(`identity in ${dir} is for overlay ${existing.identity.certificate.claims.overlay}, not ${overlay}`);
    }
    return existing;
  }
  const identity = createOpenIdentity(random.bytes(32), `peer@${overlay}`, overlay, nowSeconds);
  saveIdentity(dir, 'open', identity);
  return { mode: 'open', identity };
}

export function saveIdentity(dir: string, mode: string, identity: NodeIdentity): void {
  writeCborFile(path.join(dir, FILE), [mode, identity.keys.seed, identity.certificate.bytes]);
}
