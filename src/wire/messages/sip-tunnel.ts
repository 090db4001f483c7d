import { readBytes } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * A SIP message carried through the overlay to a peer (codes 35/36, RELOAD's experimental
 * exp_a pair), for homes that have no direct path to each other (RFC 7904 s4 routes SIP over
 * an AppAttach'd connection when it can). The answer only acknowledges the hop: SIP's own
 * transactions retransmit and answer end to end.
 *
 *   sip-tunnel-req = [sip: bstr]
 *   sip-tunnel-ans = []
 */
export const sipTunnelReq = arrayBody<{ readonly sip: Uint8Array }>(
  'sipTunnelReq',
  1,
  1,
  (v) => [v.sip],
  (f, p) => ({ sip: readBytes(f[0], `${p}.sip`, 1, 65_535) }),
);

export const sipTunnelAns = arrayBody<Record<string, never>>(
  'sipTunnelAns',
  0,
  0,
  () => [],
  () => ({}),
);
