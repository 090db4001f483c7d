import { closeSync, constants, fchownSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

/*
 * Files that must survive a crash or a power cut whole: the node's small state files
 * (node/cbor-file.ts) and the storage log's copies (storage/backends/file-backend.ts).
 */

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
    // Created afresh, never through a link someone planted under the name: root writes here too.
    rmSync(temp, { force: true });
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      // Root running a command (`sudo p2psip user add`) must not leave a file the service's own
      // user cannot read: the file belongs to whoever owns the directory.
      if (process.getuid?.() === 0) {
        const owner = statSync(directory);
        fchownSync(fd, owner.uid, owner.gid);
      }
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

/** Makes a rename (or a new file) in `directory` durable (Linux: fsync on the directory itself). */
export function syncDirectory(directory: string): void {
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
