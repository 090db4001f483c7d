import { readBytes } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.5.3 ConfigUpdate: one node hands another the overlay's signed configuration
 * document. The answer carries the responder's own document when that one is newer, so one
 * exchange brings whichever side is behind up to date.
 *
 *   config-update-req = [config: bstr]            ; the sender's signed configuration
 *   config-update-ans = [config: bstr / null]     ; the responder's, if newer, else null
 */
const MAX_CONFIG = 16 * 1024;

export interface ConfigUpdateReq {
  readonly config: Uint8Array;
}

export interface ConfigUpdateAns {
  readonly newer: Uint8Array | null;
}

export const configUpdateReq = arrayBody<ConfigUpdateReq>(
  'configUpdateReq',
  1,
  1,
  (v) => [v.config],
  (f, p) => ({ config: readBytes(f[0], `${p}.config`, 1, MAX_CONFIG) }),
);

export const configUpdateAns = arrayBody<ConfigUpdateAns>(
  'configUpdateAns',
  1,
  1,
  (v) => [v.newer],
  (f, p) => ({ newer: f[0] === null ? null : readBytes(f[0], `${p}.config`, 1, MAX_CONFIG) }),
);
