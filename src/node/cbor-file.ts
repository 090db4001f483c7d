import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';

/** Small state files (identity, configuration, invitations): one CBOR value, replaced atomically. */
export function readCborFile(file: string, maxBytes: number): unknown {
  if (!existsSync(file)) return undefined;
  return decodeCbor(readFileSync(file), maxBytes, `$.${path.basename(file)}`);
}

/** Writes to a temp file, syncs it and renames it over the old one, so a crash leaves one or the other. */
export function writeCborFile(file: string, value: unknown, mode = 0o600): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp`;
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, encodeCbor(value));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}
