/** Bytes as lowercase hex, without copying them: map keys for session and transaction IDs. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
