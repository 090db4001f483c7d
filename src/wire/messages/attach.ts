import { type Address, decodeAddress, encodeAddress } from '../address.js';
import { readArray, readBool, readList, readOneOf, readText, readUint } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.5.1 Attach: routed to a Node-ID or Resource-ID, it reaches the responsible peer,
 * and the two exchange the candidate addresses on which they can be reached. CHORD-RELOAD
 * finds fingers and admitting peers this way. Each side gives its ICE username fragment and
 * password (RFC 8445 s5.3), which key the connectivity checks that follow; the requester
 * controls them (it nominates the pair both then use).
 *
 *   attach-req = [candidates: [* candidate], send-update: bool, ufrag: tstr, pwd: tstr]
 *   attach-ans = [candidates: [* candidate], ufrag: tstr, pwd: tstr]
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
  readonly ufrag: string;
  readonly pwd: string;
}
export interface AttachAns {
  readonly candidates: readonly Candidate[];
  readonly ufrag: string;
  readonly pwd: string;
}
/** s5.3: at most 256 characters each. */
const MAX_ICE_TOKEN = 256;

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
  4,
  4,
  (v) => [v.candidates.map(encodeCandidate), v.sendUpdate, v.ufrag, v.pwd],
  (f, p) => ({
    candidates: readList(f[0], `${p}.candidates`, MAX_CANDIDATES, decodeCandidate),
    sendUpdate: readBool(f[1], `${p}.sendUpdate`),
    ufrag: readText(f[2], `${p}.ufrag`, MAX_ICE_TOKEN),
    pwd: readText(f[3], `${p}.pwd`, MAX_ICE_TOKEN),
  }),
);

export const attachAns = arrayBody<AttachAns>(
  'attachAns',
  3,
  3,
  (v) => [v.candidates.map(encodeCandidate), v.ufrag, v.pwd],
  (f, p) => ({
    candidates: readList(f[0], `${p}.candidates`, MAX_CANDIDATES, decodeCandidate),
    ufrag: readText(f[1], `${p}.ufrag`, MAX_ICE_TOKEN),
    pwd: readText(f[2], `${p}.pwd`, MAX_ICE_TOKEN),
  }),
);
