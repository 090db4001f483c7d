/*
 * One UDP port carries both STUN and overlay frames; the first byte tells them apart, as
 * RFC 7983 does for DTLS and SRTP. STUN messages start with two zero bits (RFC 8489 s5);
 * our frames are CBOR arrays, major type 4 (0x80..0x9f).
 */
export const enum DatagramKind {
  Stun = 'stun',
  Overlay = 'overlay',
  Unknown = 'unknown',
}

export function classifyDatagram(datagram: Uint8Array): DatagramKind {
  if (datagram.length === 0) return DatagramKind.Unknown;
  const first = datagram[0];
  if (first <= 0x03) return DatagramKind.Stun;
  if (first >= 0x80 && first <= 0x9f) return DatagramKind.Overlay;
  return DatagramKind.Unknown;
}
