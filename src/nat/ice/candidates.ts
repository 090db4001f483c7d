import { type Address, addressKey } from '../../wire/address.js';
import { type Candidate, CandidateType } from '../../wire/messages/attach.js';

/*
 * Candidate priorities (RFC 8445 s5.1.2.1): type preference in the top byte, then a local
 * preference, then the component (always 1: one UDP port carries everything).
 */
export const TYPE_PREFERENCE: Record<CandidateType, number> = {
  [CandidateType.Host]: 126,
  [CandidateType.ServerReflexive]: 100,
  [CandidateType.Relayed]: 0,
};
/** s5.1.2.1: peer-reflexive candidates rank between host and server-reflexive ones. */
export const PEER_REFLEXIVE_PREFERENCE = 110;

export function candidatePriority(typePreference: number, localPreference = 65535): number {
  return ((typePreference << 24) >>> 0) + (localPreference << 8) + (256 - 1);
}

export function candidate(type: CandidateType, address: Address, localPreference = 65535): Candidate {
  return { type, address, priority: candidatePriority(TYPE_PREFERENCE[type], localPreference) };
}

/** s6.1.2.3: pair priority from the controlling (g) and controlled (d) candidates' priorities. */
export function pairPriority(g: number, d: number): bigint {
  const [min, max] = g < d ? [g, d] : [d, g];
  return (BigInt(min) << 32n) + 2n * BigInt(max) + (g > d ? 1n : 0n);
}

/** Host, server-reflexive and relayed candidates of one node, without duplicates (s5.1.3). */
export function gatherCandidates(host: Address, reflexive: readonly Address[], relayed: Address | undefined): Candidate[] {
  const out: Candidate[] = [candidate(CandidateType.Host, host)];
  const seen = new Set([addressKey(host)]);
  reflexive.forEach((address, i) => {
    if (seen.has(addressKey(address))) return;
    seen.add(addressKey(address));
    out.push(candidate(CandidateType.ServerReflexive, address, 65535 - i));
  });
  if (relayed) out.push(candidate(CandidateType.Relayed, relayed));
  return out;
}
