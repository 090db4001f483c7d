import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';
import { ConfigError } from './config/overlay-config.js';
import { controlSocketPath } from './control-protocol.js';

/**
 * One peer per data directory: two would interleave their writes to the storage log, the saved
 * bindings and the identities, and each would lose the other's records at compaction.
 *
 * The lock is the directory's control socket, bound before the peer opens anything else. Binding
 * a Unix socket is atomic: of two peers started at once, one gets EADDRINUSE. A socket file is
 * live while a process listens on it, and the kernel stops that when the process dies, however it
 * dies; a file left by a dead peer answers no connection, and only then is it removed and bound
 * afresh. (Two peers that find such a file at the same instant may both take it; Linux's abstract
 * sockets would close that gap, but Node 18 cannot bind one.)
 */
export class DataDirLock {
  /** Until the control server takes over, whoever connects is told the peer is starting. */
  private serve: (socket: Socket) => void = (socket) => {
    socket.on('error', () => socket.destroy()); // a probe that hung up at once (socketAnswers)
    socket.resume(); // read to the client's end, so the connection closes and release() is not held up
    socket.end(`${JSON.stringify({ ok: false, error: 'the peer is starting: try again in a moment', name: 'Starting' })}\n`);
  };

  private constructor(
    private readonly server: Server,
    private readonly file: string,
    log: Logger,
  ) {
    server.on('connection', (socket) => this.serve(socket));
    server.on('error', (error) => log.warn('control-listener-error', { error }));
  }

  static async take(dir: string, log: Logger): Promise<DataDirLock> {
    mkdirSync(dir, { recursive: true, mode: 0o700 }); // an open-mode peer's first start makes its directory
    const file = controlSocketPath(dir);
    const server = createServer();
    try {
      await listen(server, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      if (await socketAnswers(file)) throw alreadyRunning(dir);
      unlinkSync(file); // left by a peer that died: nobody listens on it
      await listen(server, file).catch((again: NodeJS.ErrnoException) => {
        throw again.code === 'EADDRINUSE' ? alreadyRunning(dir) : again;
      });
    }
    // Whoever can connect can run the peer (mint invitations, add people): its owner only,
    // whatever the umask (the data directory is 0700 as well).
    chmodSync(file, 0o600);
    return new DataDirLock(server, file, log);
  }

  /** The control socket's connections go to `serve` from now on. */
  hand(serve: (socket: Socket) => void): void {
    this.serve = serve;
  }

  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

/** Whether a process listens on the Unix socket `file` (a slow one still counts). */
export function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(file);
    const answer = (running: boolean): void => {
      socket.destroy();
      resolve(running);
    };
    socket.setTimeout(2_000, () => answer(true));
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
  });
}

function listen(server: Server, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function alreadyRunning(dir: string): ConfigError {
  return new ConfigError(`a peer is already running on ${dir} (its control socket answers): stop it first, or give this one a --data of its own`);
}
