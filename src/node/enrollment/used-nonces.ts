import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { OnceSet } from '../../runtime/once-set.js';
import { writeFileAtomically } from '../../runtime/durable-files.js';

/*
 * The nonces an authority has taken, kept across restarts: a signed renewal, user or release
 * request is good once while its time can be believed, and a restart must not make one captured
 * earlier good again. (Refusing everything signed before the restart did that too, but refused a
 * device whose clock ran a little behind for as many seconds after each restart.) An append-only
 * file of small records, synced before the request is answered; a crash mid-append leaves a torn
 * last record, which is dropped. The first nonce taken after a start rewrites it with the live
 * records only, and so does a running authority once it has appended COMPACT_AFTER_BYTES: signed
 * requests at the transport's rate would otherwise grow it by megabytes a day, past what a start
 * reads.
 *
 *   record = until (uint32, seconds, big-endian) | key length (uint8) | key (UTF-8)
 */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** Well above the live records (10,000 keys of 37 bytes), well under MAX_FILE_BYTES. */
const COMPACT_AFTER_BYTES = 1024 * 1024;

export class UsedNonces {
  /** Unknown until the first nonce is taken, which rewrites the file with the live records. */
  private bytesOnDisk: number | undefined;

  private constructor(
    private readonly file: string,
    private readonly once: OnceSet,
  ) {}

  /**
   * The nonces in `file` still live at `nowSeconds`. Opening only reads: `user list` loads the
   * authority too, perhaps as root or from a read-only copy, and must leave the file as it was.
   */
  static open(file: string, maxKeys: number, nowSeconds: number): UsedNonces {
    const once = new OnceSet(maxKeys);
    if (existsSync(file) && statSync(file).size <= MAX_FILE_BYTES) {
      for (const { key, until } of records(readFileSync(file))) if (until >= nowSeconds) once.firstUse(key, until, nowSeconds);
    }
    // (An oversized file is not read: then, as after a lost disk, requests are believed for their time window alone.)
    return new UsedNonces(file, once);
  }

  /** True the first time `key` is offered while live (and it is on disk before this returns). */
  firstUse(key: string, until: number, nowSeconds: number): boolean {
    if (!this.once.firstUse(key, until, nowSeconds)) return false;
    // The first rewrites the file (expired records out, a torn last one too, so appends parse).
    if (this.bytesOnDisk === undefined) {
      this.bytesOnDisk = this.compact(nowSeconds);
      return true;
    }
    const appended = record(key, until);
    const fd = openSync(this.file, 'a', 0o600);
    try {
      for (let written = 0; written < appended.length; ) written += writeSync(fd, appended, written);
      fsyncSync(fd);
    } catch (error) {
      this.bytesOnDisk = undefined; // a full disk: the next use rewrites the file whole, without the half record
      throw error;
    } finally {
      closeSync(fd);
    }
    this.bytesOnDisk += appended.length;
    if (this.bytesOnDisk > COMPACT_AFTER_BYTES) this.bytesOnDisk = this.compact(nowSeconds);
    return true;
  }

  /** Rewrites the file with the live records only; returns its size. */
  private compact(nowSeconds: number): number {
    const live = Buffer.concat([...this.once.live(nowSeconds)].map(([key, until]) => record(key, until)));
    writeFileAtomically(this.file, live);
    return live.length;
  }

  get size(): number {
    return this.once.size;
  }
}

function record(key: string, until: number): Uint8Array {
  const text = Buffer.from(key, 'utf8').subarray(0, 255);
  const out = Buffer.alloc(5 + text.length);
  out.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(until))), 0);
  out.writeUInt8(text.length, 4);
  text.copy(out, 5);
  return out;
}

function* records(data: Buffer): Generator<{ key: string; until: number }> {
  for (let at = 0; at + 5 <= data.length; ) {
    const length = data.readUInt8(at + 4);
    if (at + 5 + length > data.length) return; // torn by a crash mid-append
    yield { until: data.readUInt32BE(at), key: data.toString('utf8', at + 5, at + 5 + length) };
    at += 5 + length;
  }
}
