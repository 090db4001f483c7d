import { AuthorityTrustPolicy } from '../identity/authority-trust.js';
import type { NodeIdentity } from '../identity/identity.js';
import { OpenTrustPolicy, type TrustPolicy } from '../identity/trust.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import { KindRegistry } from '../storage/kind.js';
import { DEFAULT_STORAGE_LIMITS, type StorageLimits } from '../storage/resource-store.js';
import type { Address } from '../wire/address.js';
import { loadConfig } from './config/config-file.js';
import type { SignedConfig } from './config/overlay-config.js';
import { IdentityMissingError, loadIdentity, loadOrCreateOpenIdentity } from './identity-store.js';

export const OPEN_MODE_WARNING = 'OPEN OVERLAY: identities are self-issued and anyone can join; use only in labs';

/**
 * What a data directory says about how to run: an enrolled node (identity issued by an authority,
 * plus the signed configuration) or, only when asked for with --open, an open lab node.
 */
export interface NodeSetup {
  readonly mode: 'open' | 'authority';
  identity: NodeIdentity;
  readonly trust: TrustPolicy;
  readonly overlayName: string;
  readonly kinds: KindRegistry;
  readonly limits: StorageLimits;
  readonly replicas: number;
  readonly bootstrap: readonly Address[];
  readonly config?: SignedConfig;
}

export function loadNodeSetup(dataDir: string, open: boolean, openOverlayName: string, random: Random, nowSeconds: number, log: Logger): NodeSetup {
  const stored = loadIdentity(dataDir);
  if (stored?.mode === 'authority') {
    const config = loadConfig(dataDir);
    if (!config) throw new IdentityMissingError(`${dataDir} holds an enrolled identity but no config.cbor`);
    const c = config.config;
    return {
      mode: 'authority',
      identity: stored.identity,
      trust: new AuthorityTrustPolicy(c.overlay, c),
      overlayName: c.overlay,
      kinds: new KindRegistry(c.kinds),
      limits: c.limits,
      replicas: c.replicas,
      bootstrap: c.bootstrap,
      config,
    };
  }
  if (!open) {
    throw new IdentityMissingError(
      stored ? `${dataDir} holds an open-mode identity: pass --open to run it` : `no identity in ${dataDir}: run p2psip init or p2psip join first (or pass --open for a lab overlay)`,
    );
  }
  const opened = loadOrCreateOpenIdentity(dataDir, openOverlayName, random, nowSeconds);
  log.warn('open-mode', { warning: OPEN_MODE_WARNING });
  return {
    mode: 'open',
    identity: opened.identity,
    trust: new OpenTrustPolicy(openOverlayName),
    overlayName: openOverlayName,
    kinds: new KindRegistry(),
    limits: DEFAULT_STORAGE_LIMITS,
    replicas: 3,
    bootstrap: [],
  };
}
