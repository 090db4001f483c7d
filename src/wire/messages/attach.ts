import { type Address, decodeAddress, encodeAddress } from '../address.js';
import { readArray, readBool, readList, readOneOf, readUint } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.5.1 Attach: routed to a Node-ID or Resource-ID, it reaches the responsible peer,
 * and the two exchange the candidate addresses on which they can be reached. CHORD-RELOAD
 * finds fingers and admitting peers this way. The NAT issue adds server-reflexive and relayed
 * candidates and connectivity checks; the shape is ready for them.
 *
 *   attach-req = [candidates: [* candidate], send-update: bool]
 *   attach-ans = [candidates: [* candidate]]
 *   candidate  = [type: 1 host / 2 server-reflexive / 3 relayed, address, priority: uint]
 */
export const enum CandidateType {
  Host = 1,
  ServerReflexive = 2,
  Relayed = 3,
}
export const MAX_CANDIDATES = 8;

export interface Candidate {
  readonly type: CandidateType;
  readonly address: Address;
  readonly priority: number;
}

export interface AttachReq {
  readonly candidates: readonly Candidate[];
  readonly sendUpdate: boolean;
}
export interface AttachAns {
  readonly candidates: readonly Candidate[];
}

export function encodeCandidate(c: Candidate): unknown[] {
  return [c.type, encodeAddress(c.address), c.priority];
}

export function decodeCandidate(value: unknown, path: string): Candidate {
  const [type, address, priority] = readArray(value, path, 3, 3);
  return {
    type: readOneOf(type, `${path}[0]`, [CandidateType.Host, CandidateType.ServerReflexive, CandidateType.Relayed]),
    address: decodeAddress(address, `${path}[1]`),
    priority: readUint(priority, `${path}[2]`),
  };
}

export const attachReq = arrayBody<AttachReq>(
  'attachReq',
  2,
  2,
  (v) => [v.candidates.map(encodeCandidate), v.sendUpdate],
  (f, p) => ({
    candidates: readList(f[0], `${p}.candidates`, MAX_CANDIDATES, decodeCandidate),
    sendUpdate: readBool(f[1], `${p}.sendUpdate`),
  }),
);

export const attachAns = arrayBody<AttachAns>(
  'attachAns',
  1,
  1,
  (v) => [v.candidates.map(encodeCandidate)],
  (f, p) => ({ candidates: readList(f[0], `${p}.candidates`, MAX_CANDIDATES, decodeCandidate) }),
);
