import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';
import { DecodeError } from '../wire/decode-error.js';

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

/**
 * Writes to a temp file, syncs it, renames it over the old one and syncs the directory, so a
 * crash or a power cut leaves one or the other, and a write that returned is there after one. A
 * disk too full for all of it (write(2) writes what fits, then fails) throws and leaves the old
 * file as it was: a short file must never replace a good one (the node's key is in one).
 */
export function writeFileAtomically(file: string, bytes: Uint8Array, mode = 0o600): void {
  const directory = path.dirname(file);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  // One temp name per process: the peer and a command writing the same file at once do not share one.
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(temp, 'w', mode);
    try {
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(directory);
}

/** Makes a rename in `directory` durable (Linux: fsync on the directory itself). */
function syncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // Not every system lets a directory be opened or synced (Windows): the rename stands unsynced there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
