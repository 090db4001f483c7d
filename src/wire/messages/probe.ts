import { DecodeError } from '../decode-error.js';
import { type Id, idToBytes, readId } from '../id.js';
import { readArray, readList, readOneOf, readUint } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.4.2.1 Probe: asks a peer about itself without changing anything.
 *
 *   probe-req = [requested: [* probe-type]]
 *   probe-ans = [* [probe-type, value]]
 *   probe-type: 1 responsible-set (uint: share of the ring, in 2^-32 units),
 *               2 num-resources (uint), 3 uptime (seconds), 4 successors ([* node-id])
 */
export const enum ProbeType {
  ResponsibleSet = 1,
  NumResources = 2,
  Uptime = 3,
  Successors = 4,
}
const PROBE_TYPES = [ProbeType.ResponsibleSet, ProbeType.NumResources, ProbeType.Uptime, ProbeType.Successors];

export interface ProbeReq {
  readonly requested: readonly ProbeType[];
}
export interface ProbeAns {
  readonly responsibleSet?: number;
  readonly numResources?: number;
  readonly uptimeSeconds?: number;
  readonly successors?: readonly Id[];
}

export const probeReq = arrayBody<ProbeReq>(
  'probeReq',
  1,
  1,
  (v) => [v.requested],
  (f, p) => ({ requested: readList(f[0], `${p}.requested`, 8, (x, q) => readOneOf(x, q, PROBE_TYPES)) }),
);

export const probeAns = arrayBody<ProbeAns>(
  'probeAns',
  0,
  4,
  (v) => {
    const out: unknown[] = [];
    if (v.responsibleSet !== undefined) out.push([ProbeType.ResponsibleSet, v.responsibleSet]);
    if (v.numResources !== undefined) out.push([ProbeType.NumResources, v.numResources]);
    if (v.uptimeSeconds !== undefined) out.push([ProbeType.Uptime, v.uptimeSeconds]);
    if (v.successors !== undefined) out.push([ProbeType.Successors, v.successors.map(idToBytes)]);
    return out;
  },
  (f, p) => {
    const ans: { -readonly [K in keyof ProbeAns]: ProbeAns[K] } = {};
    f.forEach((entry, i) => {
      const [type, value] = readArray(entry, `${p}[${i}]`, 2, 2);
      const t = readOneOf(type, `${p}[${i}][0]`, PROBE_TYPES);
      const q = `${p}[${i}][1]`;
      if (t === ProbeType.ResponsibleSet) ans.responsibleSet = readUint(value, q);
      else if (t === ProbeType.NumResources) ans.numResources = readUint(value, q);
      else if (t === ProbeType.Uptime) ans.uptimeSeconds = readUint(value, q);
      else if (t === ProbeType.Successors) ans.successors = readList(value, q, 32, readId);
      else throw new DecodeError(q, 'unhandled probe type');
    });
    return ans;
  },
);
