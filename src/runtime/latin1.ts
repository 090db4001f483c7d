/*
 * Bytes kept as a latin1 string (one character per byte): V8 stores such a string in one piece
 * on its heap with a 16-byte header, where a Uint8Array costs about 300 bytes beyond its contents
 * (the view, its ArrayBuffer, the backing store and malloc's bookkeeping). For what a peer holds
 * by the thousand and reads rarely.
 */
export function bytesToLatin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

export function latin1ToBytes(text: string): Uint8Array {
  const buffer = Buffer.from(text, 'latin1');
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
}
