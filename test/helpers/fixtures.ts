import { createOpenIdentity } from '../../src/identity/open-identity.js';
import type { NodeIdentity } from '../../src/identity/identity.js';

/** A fixed instant (2026-01-01) so certificates and vectors never depend on the day a test runs. */
export const FIXED_NOW_SECONDS = Math.floor(Date.UTC(2026, 0, 1) / 1000);
export const TEST_OVERLAY = 'test.p2psip';

/** A deterministic identity: seed bytes all equal to `n`. */
export function testIdentity(n: number, overlay = TEST_OVERLAY): NodeIdentity {
  return createOpenIdentity(new Uint8Array(32).fill(n), `node${n}@${overlay}`, overlay, FIXED_NOW_SECONDS);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}
