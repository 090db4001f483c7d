import { type ChordView, viewBody } from './chord-view.js';

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

export const updateReq = viewBody('updateReq');
export const updateAns = viewBody('updateAns');
