import { close, closeSync, existsSync, fdatasync, fsyncSync, mkdirSync, open, openSync, readFileSync, rename, truncateSync, write } from 'node:fs';
import path from 'node:path';
import { DecodeError } from '../../wire/decode-error.js';
import type { BackendStats, StorageBackend, StorageChange } from './backend.js';
import { decodeChange, encodeChange } from './change-codec.js';
import { crc32 } from '../../runtime/crc32.js';

/*
 * The embedded default backend: an append-only log of checksummed CBOR records in DIR/store.log.
 *
 *   record = length: u32 BE | crc32(cbor): u32 BE | cbor (a change, see change-codec.ts)
 *
 * A Store is acknowledged only after its records are written and fdatasync'd; writes that queue
 * up meanwhile share one sync (group commit). At start the log is replayed up to the first
 * record that is short or fails its checksum — the tail a kill left half-written — and the file
 * is cut back there, so nothing corrupt is ever served and later appends start clean.
 * Compaction writes the live records to a new file, syncs it and renames it over the log: a kill
 * at any moment leaves either the old log or the new one. It runs as asynchronous writes in the
 * same queue as appends, so fetches are served throughout.
 */
const LOG = 'store.log';
const HEADER = 8;
const MAX_RECORD = 64 * 1024;
const COMPACT_CHUNK = 256 * 1024;

type Job =
  | { readonly type: 'append'; readonly bytes: Buffer; readonly done: ((error?: Error) => void)[] }
  | { readonly type: 'compact'; readonly live: () => StorageChange[]; readonly done: (error?: Error) => void };

export class FileBackend implements StorageBackend {
  readonly name = 'file';
  private fd = -1;
  private readonly queue: Job[] = [];
  private busy = false;
  private logRecords = 0;
  private counters = { bytesWritten: 0, syncs: 0, compactions: 0 };
  /** Bytes cut from a torn tail at the last load. */
  recoveredTailBytes = 0;

  constructor(private readonly dir: string) {}

  private get file(): string {
    return path.join(this.dir, LOG);
  }

  load(): StorageChange[] {
    mkdirSync(this.dir, { recursive: true });
    const changes: StorageChange[] = [];
    let good = 0;
    if (existsSync(this.file)) {
      const data = readFileSync(this.file);
      while (good + HEADER <= data.length) {
        const length = data.readUInt32BE(good);
        if (length === 0 || length > MAX_RECORD || good + HEADER + length > data.length) break;
        const body = data.subarray(good + HEADER, good + HEADER + length);
        if (crc32(body) !== data.readUInt32BE(good + 4)) break;
        try {
          changes.push(decodeChange(body));
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          break;
        }
        good += HEADER + length;
      }
      this.recoveredTailBytes = data.length - good;
      if (good < data.length) truncateSync(this.file, good);
    }
    this.fd = openSync(this.file, 'a');
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
    return this.logRecords > 2 * liveRecords + 1000;
  }

  stats(): BackendStats {
    return { records: this.logRecords, ...this.counters };
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
    if (job.type === 'append') this.writeAll(this.fd, job.bytes, (error) => (error ? finish(error) : this.sync(this.fd, finish)));
    else this.runCompaction(job.live(), finish);
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

  private runCompaction(live: StorageChange[], done: (error?: Error) => void): void {
    const temp = `${this.file}.compact`;
    const bytes = Buffer.concat(live.map(frame));
    open(temp, 'w', (error, fd) => {
      if (error) return done(error);
      this.writeAll(fd, bytes, (writeError) => {
        if (writeError) return close(fd, () => done(writeError));
        this.sync(fd, (syncError) => {
          close(fd, () => {
            if (syncError) return done(syncError);
            rename(temp, this.file, (renameError) => {
              if (renameError) return done(renameError);
              syncDirectory(this.dir);
              closeSync(this.fd);
              this.fd = openSync(this.file, 'a');
              this.logRecords = live.length;
              this.counters.compactions++;
              done();
            });
          });
        });
      });
    });
  }
}

function frame(change: StorageChange): Buffer {
  const body = encodeChange(change);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32(body), 4);
  return Buffer.concat([header, body]);
}

/** A rename is durable only once its directory is synced. */
function syncDirectory(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
