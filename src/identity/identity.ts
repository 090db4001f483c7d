import type { Id } from '../wire/id.js';
import type { Certificate } from './certificate.js';
import type { KeyPair } from './keys.js';

/** Everything a node needs to speak for itself. */
export interface NodeIdentity {
  readonly nodeId: Id;
  readonly keys: KeyPair;
  /** Replaced in place when renewed, so every part that signs picks up the new one. */
  certificate: Certificate;
}
