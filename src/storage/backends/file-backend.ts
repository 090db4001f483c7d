import { close, closeSync, existsSync, fdatasync, ftruncate, mkdirSync, open, openSync, readFileSync, rename, rm, statfsSync, statSync, truncateSync, write } from 'node:fs';
import path from 'node:path';
import { DecodeError } from '../../wire/decode-error.js';
import type { BackendStats, StorageBackend, StorageChange } from './backend.js';
import { decodeChange, encodeChange } from './change-codec.js';
import { crc32 } from '../../runtime/crc32.js';
import { syncDirectory, writeFileAtomically } from '../../runtime/durable-files.js';

/*
 * The embedded default backend: an append-only log of checksummed CBOR records in DIR/store.log.
 *
 *   record = length: u32 BE | crc32(cbor): u32 BE | cbor (a change, see change-codec.ts)
 *
 * A Store is acknowledged only after its records are written and fdatasync'd; writes that queue
 * up meanwhile share one sync (group commit); a group whose write or sync fails is cut off the
 * log again before anything else is written. At start the log is replayed record by record:
 * one record that fails its checksum while every record after it checks (a flipped bit) is
 * passed over, and so is a whole record that is not a change we can read; other damage is the
 * tail a kill left half-written, and the file is cut back there. Nothing corrupt is ever
 * served, and the next compaction leaves what was passed over behind.
 * Compaction writes the live records to a new file, syncs it and renames it over the log: a kill
 * at any moment leaves either the old log or the new one. It runs as asynchronous writes in the
 * same queue as appends, so fetches are served throughout.
 */
const LOG = 'store.log';
const HEADER = 8;
const MAX_RECORD = 64 * 1024;
const COMPACT_CHUNK = 256 * 1024;
/** Disk kept free beside the log: the node's small state files, the saved registrations, the used nonces. */
const DISK_RESERVE = 2 * 1024 * 1024;
/** After a compaction failed (a full disk, most likely), the next checks that skip it: 1, 2, 4, ... up to this many. */
const MAX_COMPACTION_BACKOFF = 64;

type Job =
  | { readonly type: 'append'; readonly bytes: Buffer; readonly done: ((error?: Error) => void)[] }
  | { readonly type: 'compact'; readonly live: () => StorageChange[]; readonly done: (error?: Error) => void };

export class FileBackend implements StorageBackend {
  readonly name = 'file';
  private fd = -1;
  private readonly queue: Job[] = [];
  private busy = false;
  private logRecords = 0;
  private counters = { bytesWritten: 0, syncs: 0, compactions: 0, compactionsFailed: 0 };
  /** wantsCompaction() checks still to say no after compactions failed in a row (each costs a whole copy of the live data). */
  private compactionBackoff = { skip: 0, next: 1 };
  /** Bytes cut from a torn tail at the last load. */
  recoveredTailBytes = 0;
  /** Bytes passed over at the last load in the middle of the log (damaged, or unreadable records): compaction drops them. */
  damagedBytes = 0;
  /** Where the log was copied before load cut off more than a torn append (the newest such copy only). */
  setAside: string | undefined;
  /** Why that copy could not be made. */
  setAsideError: string | undefined;
  /** The log's length as far as whole records go. */
  private size = 0;
  /** Set when an append failed part-way and the log could not yet be cut back to `size`. */
  private cutBackPending = false;

  constructor(private readonly dir: string) {}

  private get file(): string {
    return path.join(this.dir, LOG);
  }

  load(): StorageChange[] {
    mkdirSync(this.dir, { recursive: true });
    const changes: StorageChange[] = [];
    let end = 0; // the end of the last whole record
    const existed = existsSync(this.file);
    if (existed) {
      const data = readFileSync(this.file);
      let at = 0;
      while (at + HEADER <= data.length) {
        const next = recordEnd(data, at);
        if (next === undefined) {
          // A record whose bytes were damaged (a flipped bit) but whose length still leads to
          // one or more records that check all the way to the end: passed over, and what follows is kept. We do
          // not hunt for a record start elsewhere: a stored value's bytes could be made to look like one.
          const skipTo = claimedEnd(data, at);
          if (skipTo === undefined || skipTo === data.length || !wholeToTheEnd(data, skipTo)) break;
          this.damagedBytes += skipTo - at;
          at = skipTo;
          continue;
        }
        try {
          changes.push(decodeChange(data.subarray(at + HEADER, next)));
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          this.damagedBytes += next - at; // whole and checksummed, but not a change we can read: passed over
        }
        at = end = next;
      }
      this.recoveredTailBytes = data.length - end;
      // More cut off than one torn append can leave: damage (a bad flash page) cost good records
      // after it. They are not hunted for (see above), but the log as it was is kept aside, once.
      if (this.recoveredTailBytes > HEADER + MAX_RECORD) {
        try {
          writeFileAtomically(`${this.file}.damaged`, data);
          this.setAside = `${this.file}.damaged`;
        } catch (error) {
          this.setAsideError = (error as Error).message; // a full disk: the peer starts all the same, and says so
        }
      }
      if (end < data.length) truncateSync(this.file, end);
    }
    this.fd = openSync(this.file, 'a');
    if (!existed) syncDirectory(this.dir); // a new file's name is durable only once its directory is
    this.size = end;
    this.logRecords = changes.length;
    return changes;
  }

  append(changes: readonly StorageChange[], done: (error?: Error) => void): void {
    const bytes = Buffer.concat(changes.map(frame));
    const last = this.queue[this.queue.length - 1];
    // Group commit: join the append already waiting, if any (the one being written is not queued).
    if (last && last.type === 'append') {
      this.queue[this.queue.length - 1] = { type: 'append', bytes: Buffer.concat([last.bytes, bytes]), done: [...last.done, done] };
    } else {
      this.queue.push({ type: 'append', bytes, done: [done] });
    }
    this.logRecords += changes.length;
    this.pump();
  }

  compact(live: () => StorageChange[], done: (error?: Error) => void): void {
    this.queue.push({ type: 'compact', live, done });
    this.pump();
  }

  wantsCompaction(liveRecords: number): boolean {
    const wanted = this.damagedBytes > 0 || this.logRecords > 2 * liveRecords + 1000;
    if (wanted && this.compactionBackoff.skip > 0) {
      this.compactionBackoff.skip--;
      return false;
    }
    return wanted;
  }

  /**
   * The log grows to about twice the live records before it is compacted, and a compaction
   * writes one copy more beside it: a third of the room the log may take (the free space and
   * its own bytes, less a reserve). A router's small flash (OpenWrt keeps the data in /etc) gets
   * a quota it can hold, not the default one it would fill. Node before 18.15 has no statfs:
   * undefined there.
   */
  room(): number | undefined {
    if (typeof statfsSync !== 'function') return undefined;
    try {
      const { bavail, bsize } = statfsSync(existsSync(this.dir) ? this.dir : path.dirname(this.dir));
      const log = existsSync(this.file) ? statSync(this.file).size : 0;
      return Math.max(0, Math.floor((bavail * bsize + log - DISK_RESERVE) / 3));
    } catch {
      return undefined;
    }
  }

  stats(): BackendStats {
    return { records: this.logRecords, ...this.counters, damagedBytes: this.damagedBytes, cutAtLoad: this.recoveredTailBytes, ...(this.setAside ? { setAside: this.setAside } : {}), ...(this.setAsideError ? { setAsideError: this.setAsideError } : {}) };
  }

  async close(): Promise<void> {
    for (let i = 0; i < 1000 && (this.busy || this.queue.length); i++) await new Promise((r) => setTimeout(r, 5));
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private pump(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = true;
    const finish = (error?: Error): void => {
      this.busy = false;
      if (job.type === 'append') for (const d of job.done) d(error);
      else job.done(error);
      this.pump();
    };
    if (job.type === 'append') this.runAppend(job.bytes, finish);
    else this.runCompaction(job.live(), finish);
  }

  /**
   * Writes and syncs one group of records. If that fails, the log is cut back to where the group
   * began, so half a record never sits before later ones (a restart would take it for the end);
   * until the cut succeeds, nothing else is written.
   */
  private runAppend(bytes: Buffer, done: (error?: Error) => void): void {
    const start = this.size;
    const failed = (error: Error): void => {
      this.cutBackPending = true;
      this.cutBack(() => done(error));
    };
    const write = (): void =>
      this.writeAll(this.fd, bytes, (error) => {
        if (error) return failed(error);
        this.sync(this.fd, (syncError) => {
          if (syncError) return failed(syncError);
          this.size = start + bytes.length;
          done();
        });
      });
    if (!this.cutBackPending) return write();
    this.cutBack((error) => (error ? done(error) : write()));
  }

  private cutBack(done: (error?: Error) => void): void {
    ftruncate(this.fd, this.size, (error) => {
      if (error) return done(error);
      this.cutBackPending = false;
      done();
    });
  }

  private sync(fd: number, done: (error?: Error) => void): void {
    fdatasync(fd, (error) => {
      this.counters.syncs++;
      done(error ?? undefined);
    });
  }

  private writeAll(fd: number, bytes: Buffer, done: (error?: Error) => void, offset = 0): void {
    if (offset >= bytes.length) return done();
    write(fd, bytes, offset, Math.min(COMPACT_CHUNK, bytes.length - offset), null, (error, written) => {
      if (error) return done(error);
      this.counters.bytesWritten += written;
      this.writeAll(fd, bytes, done, offset + written);
    });
  }

  /**
   * Writes the live records to a new log and renames it over the old one. When that fails (the
   * disk is full) the partial copy goes at once, so the disk is no fuller than before, and the
   * next tries come ever later: each would write up to a whole copy of the data to flash again.
   */
  private runCompaction(live: StorageChange[], done: (error?: Error) => void): void {
    const temp = `${this.file}.compact`;
    const bytes = Buffer.concat(live.map(frame));
    const failed = (error: Error): void => {
      this.counters.compactionsFailed++;
      this.compactionBackoff = { skip: this.compactionBackoff.next, next: Math.min(2 * this.compactionBackoff.next, MAX_COMPACTION_BACKOFF) };
      rm(temp, { force: true }, () => done(error));
    };
    open(temp, 'w', (error, fd) => {
      if (error) return failed(error);
      this.writeAll(fd, bytes, (writeError) => {
        if (writeError) return close(fd, () => failed(writeError));
        this.sync(fd, (syncError) => {
          close(fd, () => {
            if (syncError) return failed(syncError);
            rename(temp, this.file, (renameError) => {
              if (renameError) return failed(renameError);
              this.compactionBackoff = { skip: 0, next: 1 };
              syncDirectory(this.dir);
              closeSync(this.fd);
              this.fd = openSync(this.file, 'a');
              this.logRecords = live.length;
              this.size = bytes.length;
              this.damagedBytes = 0;
              this.cutBackPending = false;
              this.counters.compactions++;
              done();
            });
          });
        });
      });
    });
  }
}

/** Where the record at `at` ends, if it is whole and its checksum holds. */
function recordEnd(data: Buffer, at: number): number | undefined {
  if (at + HEADER > data.length) return undefined;
  const end = claimedEnd(data, at);
  return end !== undefined && crc32(data.subarray(at + HEADER, end)) === data.readUInt32BE(at + 4) ? end : undefined;
}

/** Where the record at `at` ends by its length field, whatever its checksum says. */
function claimedEnd(data: Buffer, at: number): number | undefined {
  const length = data.readUInt32BE(at);
  const end = at + HEADER + length;
  return length === 0 || length > MAX_RECORD || end > data.length ? undefined : end;
}

/** Whether every record from `at` on is whole and checks, to the end of the log. */
function wholeToTheEnd(data: Buffer, at: number): boolean {
  while (at < data.length) {
    const next = recordEnd(data, at);
    if (next === undefined) return false;
    at = next;
  }
  return true;
}

function frame(change: StorageChange): Buffer {
  const body = encodeChange(change);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32(body), 4);
  return Buffer.concat([header, body]);
}

