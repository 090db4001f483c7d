import type { Authority } from '../../identity/authority-trust.js';
import { openSign1, sign1Valid, signSign1 } from '../../identity/cose-sign1.js';
import { keyFingerprint } from '../../identity/ids.js';
import { type KeyPair, PUBLIC_KEY_BYTES, publicKeyObject } from '../../identity/keys.js';
import { P2psipError } from '../../runtime/errors.js';
import type { AccessPolicy, DataModel, KindDefinition } from '../../storage/kind.js';
import type { StorageLimits } from '../../storage/resource-store.js';
import { type Address, decodeAddress, encodeAddress } from '../../wire/address.js';
import { decodeCbor, encodeCbor } from '../../wire/cbor.js';
import { DecodeError } from '../../wire/decode-error.js';
import { readArray, readBytes, readList, readOneOf, readText, readUint } from '../../wire/schema.js';

/*
 * The overlay's configuration document (RFC 6940 s11.1, in CBOR): what every node of one overlay
 * must agree on. The first (root) authority signs it; a node takes a newer one only when that
 * same root signed it and its sequence number is higher (ConfigUpdate: docs/protocol.md, "Configuration updates").
 *
 *   config = COSE_Sign1(payload: {1: overlay, 2: sequence, 3: [+ authority], 4: [* address],
 *                                 5: [+ kind], 6: [maxBytesPerResource, maxBytesTotal],
 *                                 7: replicas, 8: [* revoked-fingerprint], 9: cert-lifetime-s,
 *                                 10: issued-at-s})
 *   authority = [name, public-key, [+ domain], enroll-address / null]
 *   kind = [id, name, model, policy, max-count, max-size, max-node-multiple]
 */
export interface AuthorityEntry extends Authority {
  /** Where this authority's enrollment service answers (joins and renewals). */
  readonly enrollAt?: Address;
}

export interface OverlayConfig {
  readonly overlay: string;
  readonly sequence: number;
  readonly authorities: readonly AuthorityEntry[];
  readonly bootstrap: readonly Address[];
  readonly kinds: readonly KindDefinition[];
  readonly limits: StorageLimits;
  readonly replicas: number;
  /** Fingerprints (keyFingerprint) of revoked node keys. */
  readonly revoked: readonly string[];
  readonly certificateLifetimeSeconds: number;
  readonly issuedAt: number;
}

export interface SignedConfig {
  readonly config: OverlayConfig;
  /** The document exactly as signed: what travels in ConfigUpdate and invitations. */
  readonly bytes: Uint8Array;
}

export class ConfigError extends P2psipError {
  override readonly name = 'ConfigError';
}

const MODELS: readonly DataModel[] = ['single', 'array', 'dictionary'];
const POLICIES: readonly AccessPolicy[] = ['USER-MATCH', 'NODE-MATCH', 'USER-NODE-MATCH', 'NODE-MULTIPLE', 'NODE-KEYED'];
const MAX_DOCUMENT = 16 * 1024;

function toMap(c: OverlayConfig): Map<number, unknown> {
  return new Map<number, unknown>([
    [1, c.overlay],
    [2, c.sequence],
    [3, c.authorities.map((a) => [a.name, a.publicKey, [...a.domains], a.enrollAt ? encodeAddress(a.enrollAt) : null])],
    [4, c.bootstrap.map(encodeAddress)],
    [5, c.kinds.map((k) => [k.id, k.name, MODELS.indexOf(k.model), POLICIES.indexOf(k.policy), k.maxCount, k.maxSize, k.maxNodeMultiple ?? 0])],
    [6, [c.limits.maxBytesPerResource, c.limits.maxBytesTotal]],
    [7, c.replicas],
    [8, [...c.revoked]],
    [9, c.certificateLifetimeSeconds],
    [10, c.issuedAt],
  ]);
}

function readAuthority(value: unknown, path: string): AuthorityEntry {
  const [name, key, domains, enrollAt] = readArray(value, path, 4, 4);
  return {
    name: readText(name, `${path}.name`, 64),
    publicKey: readBytes(key, `${path}.key`, PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES),
    domains: readList(domains, `${path}.domains`, 16, (d, p) => readText(d, p, 253), 1),
    ...(enrollAt === null ? {} : { enrollAt: decodeAddress(enrollAt, `${path}.enrollAt`) }),
  };
}

function readKind(value: unknown, path: string): KindDefinition {
  const [id, name, model, policy, maxCount, maxSize, maxNodeMultiple] = readArray(value, path, 7, 7);
  const multiple = readUint(maxNodeMultiple, `${path}.maxNodeMultiple`, 1024);
  return {
    id: readUint(id, `${path}.id`),
    name: readText(name, `${path}.name`, 64),
    model: MODELS[readOneOf(model, `${path}.model`, [0, 1, 2])],
    policy: POLICIES[readOneOf(policy, `${path}.policy`, [0, 1, 2, 3, 4])],
    maxCount: readUint(maxCount, `${path}.maxCount`, 1_000_000),
    maxSize: readUint(maxSize, `${path}.maxSize`, 65_536),
    ...(multiple ? { maxNodeMultiple: multiple } : {}),
  };
}

function fromMap(value: unknown): OverlayConfig {
  const path = '$.config';
  if (!(value instanceof Map)) throw new DecodeError(path, 'expected a map');
  const get = (key: number): unknown => {
    if (!value.has(key)) throw new DecodeError(`${path}[${key}]`, 'missing field');
    return value.get(key);
  };
  const [perResource, total] = readArray(get(6), `${path}.limits`, 2, 2);
  return {
    overlay: readText(get(1), `${path}.overlay`, 253),
    sequence: readUint(get(2), `${path}.sequence`),
    authorities: readList(get(3), `${path}.authorities`, 64, readAuthority, 1),
    bootstrap: readList(get(4), `${path}.bootstrap`, 32, decodeAddress),
    kinds: readList(get(5), `${path}.kinds`, 256, readKind, 1),
    limits: { maxBytesPerResource: readUint(perResource, `${path}.limits.perResource`), maxBytesTotal: readUint(total, `${path}.limits.total`) },
    replicas: readUint(get(7), `${path}.replicas`, 16),
    revoked: readList(get(8), `${path}.revoked`, 100_000, (r, p) => readText(r, p, 64)),
    certificateLifetimeSeconds: readUint(get(9), `${path}.certificateLifetime`),
    issuedAt: readUint(get(10), `${path}.issuedAt`),
  };
}

export function signConfig(config: OverlayConfig, rootKeys: KeyPair): SignedConfig {
  if (Buffer.compare(config.authorities[0].publicKey, rootKeys.publicKey) !== 0) throw new ConfigError('the root authority signs the configuration');
  const bytes = signSign1(encodeCbor(toMap(config)), rootKeys);
  // Never signed too big to open: every node (the root after a restart too) would refuse it.
  if (bytes.length > MAX_DOCUMENT) throw new ConfigError(`the configuration would be ${bytes.length} bytes, more than a node opens (${MAX_DOCUMENT}): too many revocations`);
  return { config, bytes };
}

/**
 * Decodes a configuration and checks that its root authority signed it. `rootFingerprint`, when
 * given, pins the root (from an invitation, or from the configuration held until now).
 */
export function openConfig(bytes: Uint8Array, rootFingerprint?: string): SignedConfig {
  const opened = openSign1(bytes, '$.config', MAX_DOCUMENT);
  const config = fromMap(decodeCbor(opened.payload, MAX_DOCUMENT, '$.config'));
  const root = config.authorities[0];
  if (rootFingerprint !== undefined && keyFingerprint(root.publicKey) !== rootFingerprint) {
    throw new ConfigError('configuration is signed by another authority');
  }
  if (!sign1Valid(opened, publicKeyObject(root.publicKey))) throw new ConfigError('configuration signature does not verify');
  return { config, bytes: new Uint8Array(bytes) };
}

/** ConfigUpdate acceptance: same overlay, same root, strictly newer. */
export function isNewerConfig(current: OverlayConfig, candidate: OverlayConfig): boolean {
  return (
    candidate.overlay === current.overlay &&
    Buffer.compare(candidate.authorities[0].publicKey, current.authorities[0].publicKey) === 0 &&
    candidate.sequence > current.sequence
  );
}
