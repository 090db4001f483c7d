import type { BackendStats, StorageBackend, StorageChange } from './backend.js';

/** Keeps nothing beyond the process: for tests, the simulator and diskless devices. */
export class MemoryBackend implements StorageBackend {
  readonly name = 'memory';
  private records = 0;

  load(): StorageChange[] {
    return [];
  }

  append(changes: readonly StorageChange[], done: (error?: Error) => void): void {
    this.records += changes.length;
    done();
  }

  compact(_live: () => StorageChange[], done: (error?: Error) => void): void {
    done();
  }

  wantsCompaction(): boolean {
    return false;
  }

  stats(): BackendStats {
    return { records: this.records, bytesWritten: 0, syncs: 0, compactions: 0, compactionsFailed: 0 };
  }

  async close(): Promise<void> {}
}
