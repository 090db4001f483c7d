import { timingSafeEqual } from 'node:crypto';

/**
 * Secrets compared (MACs, digests, cookies) in a time that does not tell where they differ.
 * Unequal lengths are simply unequal: Node's timingSafeEqual throws on them.
 */
export function bytesEqualInConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The same for text, compared as UTF-8: two strings of one length may differ in bytes ("é" and "e"). */
export function textEqualInConstantTime(a: string, b: string): boolean {
  return bytesEqualInConstantTime(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
