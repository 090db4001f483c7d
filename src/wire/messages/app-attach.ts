import { readList, readUint } from '../schema.js';
import { type Candidate, decodeCandidate, encodeCandidate, MAX_CANDIDATES } from './attach.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.5.2 AppAttach: like Attach, but for an application's own connection rather than
 * an overlay link. The application is named by its port number (5060 for SIP, as RFC 7904 s5
 * uses it): the answer carries where that application of the responding node can be reached.
 *
 *   app-attach-req = [application: uint .le 65535, candidates: [* candidate]]
 *   app-attach-ans = [application: uint .le 65535, candidates: [* candidate]]
 */
export const SIP_APPLICATION = 5060;

export interface AppAttach {
  readonly application: number;
  readonly candidates: readonly Candidate[];
}

const codec = (name: string) =>
  arrayBody<AppAttach>(
    name,
    2,
    2,
    (v) => [v.application, v.candidates.map(encodeCandidate)],
    (f, p) => ({ application: readUint(f[0], `${p}.application`, 65535), candidates: readList(f[1], `${p}.candidates`, MAX_CANDIDATES, decodeCandidate) }),
  );

export const appAttachReq = codec('appAttachReq');
export const appAttachAns = codec('appAttachAns');
