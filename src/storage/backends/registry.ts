import type { StorageBackend } from './backend.js';
import { FileBackend } from './file-backend.js';
import { MemoryBackend } from './memory-backend.js';

/** Backends by name, as a configuration names them. A new backend adds one line here. */
const FACTORIES: Record<string, (dataDir: string) => StorageBackend> = {
  memory: () => new MemoryBackend(),
  file: (dataDir) => new FileBackend(dataDir),
};

export const DEFAULT_BACKEND = 'file';

export function createBackend(name: string, dataDir: string): StorageBackend {
  const factory = FACTORIES[name];
  if (!factory) throw new RangeError(`unknown storage backend ${name} (known: ${Object.keys(FACTORIES).join(', ')})`);
  return factory(dataDir);
}
