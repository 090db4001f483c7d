import type { Id } from '../../wire/id.js';
import type { StoredData } from '../../wire/messages/stored-data.js';

/*
 * The storage backend interface. The resource store keeps its index in memory and hands every
 * change to a backend to make durable; at start the backend replays what it holds. A backend
 * only persists: rules (generations, lifetimes, quotas) live in the store above it.
 *
 * To add a backend: a file in storage/backends/ that implements StorageBackend, and one line in
 * storage/backends/registry.ts. Nothing outside this folder changes.
 */
export type StorageChange =
  | {
      readonly op: 'put';
      readonly resource: Id;
      readonly kind: number;
      readonly generation: bigint;
      readonly data: StoredData;
      /** What a checked put holds of the store's quotas until it is applied or given up (never persisted). */
      readonly reserved?: Reservation;
    }
  | {
      readonly op: 'remove';
      readonly resource: Id;
      readonly kind: number;
      readonly key: string;
      /** The value that expired: a newer one stored meanwhile stays (absent in records of older versions: whatever is there goes). */
      readonly storageTime?: bigint;
    };

export interface Reservation {
  readonly bytes: number;
  readonly entries: number;
}

export interface BackendStats {
  readonly records: number;
  readonly bytesWritten: number;
  readonly syncs: number;
  readonly compactions: number;
  /** Compactions that failed (a full disk): each leaves the log as it was. */
  readonly compactionsFailed: number;
  /** Damaged records passed over at load, not yet compacted away (bytes). */
  readonly damagedBytes?: number;
  /** Bytes cut off the end of the log at load (a torn last append, or worse). */
  readonly cutAtLoad?: number;
  /** Where the log was copied before more was cut off than a torn append leaves, or why it could not be. */
  readonly setAside?: string;
  readonly setAsideError?: string;
}

export interface StorageBackend {
  readonly name: string;
  /** What is durable, in the order it was written. */
  load(): StorageChange[];
  /** Makes `changes` durable (for the file backend: written and fsynced), then calls `done`. */
  append(changes: readonly StorageChange[], done: (error?: Error) => void): void;
  /** Replaces what is stored by `live` when that saves space; serving goes on meanwhile. */
  compact(live: () => StorageChange[], done: (error?: Error) => void): void;
  /** True when the stored bytes are large against the live data. */
  wantsCompaction(liveRecords: number): boolean;
  stats(): BackendStats;
  /**
   * Bytes of live values the medium has room for, when it can tell (a disk: the free space, and
   * what the backend holds already, with room for its own bookkeeping); the quota is never set
   * higher. Undefined: no bound but the configured quotas.
   */
  room?(): number | undefined;
  close(): Promise<void>;
}
