import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';
import { DecodeError } from '../wire/decode-error.js';
import { writeFileAtomically } from '../runtime/durable-files.js';

/** Small state files (identity, configuration, invitations): one CBOR value, replaced atomically. */
export function readCborFile(file: string, maxBytes: number): unknown {
  if (!existsSync(file)) return undefined;
  const where = `$.${path.basename(file)}`;
  // Sized before it is read: a file grown huge is refused without filling the heap.
  if (statSync(file).size > maxBytes) throw new DecodeError(where, `file larger than ${maxBytes} bytes`);
  return decodeCbor(readFileSync(file), maxBytes, where);
}

export function writeCborFile(file: string, value: unknown, mode = 0o600): void {
  writeFileAtomically(file, encodeCbor(value), mode);
}
