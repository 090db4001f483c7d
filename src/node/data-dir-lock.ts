import { chmodSync, closeSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
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
 * afresh. Two peers that find such a file at the same instant take it over one at a time, under a
 * marker file created exclusively beside the socket: without it, the second would unlink the socket
 * the first had just bound and both would run. A marker older than TAKEOVER_STALE_MS is left by a
 * start that died during its takeover, and is set aside (two starts that both find it stale at
 * once could still both proceed: that needs a crash mid-takeover and a double start together).
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
      await takeOver(server, file, dir);
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

/** Beyond this a takeover marker is a dead start's: a live takeover holds it for milliseconds. */
const TAKEOVER_STALE_MS = 10_000;
/** How long a start waits for another's takeover before it gives up. */
const TAKEOVER_WAIT_MS = 5_000;
const TAKEOVER_RETRY_MS = 50;

/** Removes a dead peer's socket and binds it afresh, one start at a time. */
async function takeOver(server: Server, file: string, dir: string): Promise<void> {
  const marker = `${file}.takeover`;
  for (let waited = 0; ; waited += TAKEOVER_RETRY_MS) {
    if (claim(marker)) break;
    if (waited >= TAKEOVER_WAIT_MS) throw new ConfigError(`another start is taking over ${dir}: ${marker} has been held for ${TAKEOVER_WAIT_MS / 1000} s`);
    await sleep(TAKEOVER_RETRY_MS);
  }
  try {
    // Whoever held the marker before us may have taken the directory already.
    if (await socketAnswers(file)) throw alreadyRunning(dir);
    removeIfPresent(file); // left by a peer that died: nobody listens on it
    await listen(server, file).catch((again: NodeJS.ErrnoException) => {
      throw again.code === 'EADDRINUSE' ? alreadyRunning(dir) : again;
    });
  } finally {
    removeIfPresent(marker);
  }
}

/** Creates `marker` exclusively; a stale one (its start died) is removed and the claim made again. */
function claim(marker: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      closeSync(openSync(marker, 'wx', 0o600));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!isStale(marker)) return false;
    removeIfPresent(marker);
  }
  return false;
}

function isStale(marker: string): boolean {
  try {
    // Either way: a router without a real-time clock may boot with its clock behind the marker's time.
    return Math.abs(Date.now() - statSync(marker).mtimeMs) > TAKEOVER_STALE_MS;
  } catch {
    return false; // gone since: the next claim decides
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
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
