import { type Id, RING_SIZE } from '../../../wire/id.js';

/** Clockwise distance from a to b on the 2^128 ring (RFC 6940 s10.1). */
export function clockwise(a: Id, b: Id): Id {
  const d = b - a;
  return d >= 0n ? d : d + RING_SIZE;
}

/** x in the open interval (a, b), going clockwise; (a, a) is the whole ring but a. */
export function betweenOpen(x: Id, a: Id, b: Id): boolean {
  if (a === b) return x !== a;
  const dx = clockwise(a, x);
  return dx > 0n && dx < clockwise(a, b);
}

/** x in (a, b], going clockwise: the responsibility test of Chord. */
export function betweenRightClosed(x: Id, a: Id, b: Id): boolean {
  if (a === b) return true;
  const dx = clockwise(a, x);
  return dx > 0n && dx <= clockwise(a, b);
}

/** The ID a finger points toward: self + 2^(128 - k), k = 1 the farthest (half the ring). */
export function fingerTarget(self: Id, k: number): Id {
  return (self + (1n << BigInt(128 - k))) % RING_SIZE;
}
