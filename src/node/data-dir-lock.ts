import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server } from 'node:net';
import { ConfigError } from './config/overlay-config.js';
import { controlSocketAnswers } from './control-server.js';

/**
 * One peer per data directory: two would interleave their writes to the storage log, the saved
 * bindings and the identities, and each would lose the other's records at compaction.
 *
 * The lock is a Unix socket in Linux's abstract namespace, named after the directory's real path.
 * Binding it is atomic, so two peers started at the same instant are told apart, and the kernel lets
 * go of it when the process dies, however it dies: nothing is left on disk to clean up. Abstract
 * names are per network namespace (and Linux only), so the directory's control socket is asked as
 * well: it answers for a live peer started in another namespace.
 */
export class DataDirLock {
  private constructor(private readonly server: Server | undefined) {}

  static async take(dir: string): Promise<DataDirLock> {
    const server = await holdName(lockName(dir), dir);
    if (await controlSocketAnswers(dir)) {
      server?.close();
      throw alreadyRunning(dir, 'its control socket answers');
    }
    return new DataDirLock(server);
  }

  release(): void {
    this.server?.close();
  }
}

/** The abstract socket's name (a leading NUL byte) for a directory, however the directory is spelled. */
export function lockName(dir: string): string {
  return `\0p2psip-data-${createHash('sha256').update(realPath(dir)).digest('hex').slice(0, 32)}`;
}

function realPath(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir); // not there yet: loading the setup says so
  }
}

function holdName(name: string, dir: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => {
      // Where abstract names do not exist, the control socket's answer is the lock.
      if (error.code === 'EADDRINUSE') reject(alreadyRunning(dir, 'it holds the directory\'s lock'));
      else resolve(undefined);
    });
    server.listen(name, () => {
      server.unref();
      resolve(server);
    });
  });
}

function alreadyRunning(dir: string, how: string): ConfigError {
  return new ConfigError(`a peer is already running on ${dir} (${how}): stop it first, or give this one a --data of its own`);
}
