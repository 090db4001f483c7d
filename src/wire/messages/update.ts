import { arrayBody } from './body-codec.js';
import { type ChordView, decodeChordView, encodeChordView } from './chord-view.js';

/*
 * RFC 6940 s10.4.2 Update. The sender tells a neighbour its neighbour table. We let the answer
 * carry the receiver's table too, so one exchange stabilises both sides (RELOAD sends a second
 * Update the other way); docs/protocol.md notes the difference.
 *
 *   update-req = [view: chord-view]
 *   update-ans = [view: chord-view]
 */
export interface UpdateReq {
  readonly view: ChordView;
}
export interface UpdateAns {
  readonly view: ChordView;
}

export const updateReq = arrayBody<UpdateReq>(
  'updateReq',
  1,
  1,
  (v) => [encodeChordView(v.view)],
  (f, p) => ({ view: decodeChordView(f[0], `${p}.view`) }),
);

export const updateAns = arrayBody<UpdateAns>(
  'updateAns',
  1,
  1,
  (v) => [encodeChordView(v.view)],
  (f, p) => ({ view: decodeChordView(f[0], `${p}.view`) }),
);
