import { readUint64 } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.4.2.3 Ping: tests reachability of a node or of the peer responsible for an ID.
 *
 *   ping-req = []
 *   ping-ans = [response-id: uint, time: uint]   ; time in ms since the Unix epoch
 */
export type PingReq = Record<string, never>;
export interface PingAns {
  readonly responseId: bigint;
  readonly time: bigint;
}

export const pingReq = arrayBody<PingReq>(
  'pingReq',
  0,
  0,
  () => [],
  () => ({}),
);

export const pingAns = arrayBody<PingAns>(
  'pingAns',
  2,
  2,
  (v) => [v.responseId, v.time],
  (f, p) => ({ responseId: readUint64(f[0], `${p}.responseId`), time: readUint64(f[1], `${p}.time`) }),
);
