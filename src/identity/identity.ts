import type { Id } from '../wire/id.js';
import type { Certificate } from './certificate.js';
import type { KeyPair } from './keys.js';

/** Everything a node needs to speak for itself. */
export interface NodeIdentity {
  readonly nodeId: Id;
  readonly keys: KeyPair;
  readonly certificate: Certificate;
}
