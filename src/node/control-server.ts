import { P2psipError } from '../runtime/errors.js';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';
import { type ControlAnswer, type ControlRequest, controlSocketPath } from './control-protocol.js';

const MAX_LINE = 64 * 1024;

/**
 * Whether a peer already runs on the data directory `dir`: its control socket takes a connection.
 * A socket file left by a crash (or a pid reused after a power cut) answers nothing, so it never
 * keeps a peer from starting. One half of the directory's lock (DataDirLock).
 */
export function controlSocketAnswers(dir: string): Promise<boolean> {
  const file = controlSocketPath(dir);
  if (!existsSync(file)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect(file);
    const answer = (running: boolean): void => {
      socket.destroy();
      resolve(running);
    };
    socket.setTimeout(2_000, () => answer(true)); // a socket that accepts but is slow is still a live peer's
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
  });
}

/** Serves the control socket; `handle` answers one request. */
export class ControlServer {
  private server: Server | undefined;

  constructor(
    private readonly dir: string,
    private readonly handle: (request: ControlRequest) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    const file = controlSocketPath(this.dir);
    if (existsSync(file)) unlinkSync(file); // left by a crashed run (a live one was refused: DataDirLock)
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(file, () => resolve());
    });
    // Whoever can connect can run the peer (mint invitations, add people): its owner only,
    // whatever the umask (the data directory is 0700 as well).
    chmodSync(file, 0o600);
    this.server.on('error', (error) => this.log.warn('control-listener-error', { error }));
  }

  async close(): Promise<void> {
    const file = controlSocketPath(this.dir);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (existsSync(file)) unlinkSync(file);
  }

  private serve(socket: Socket): void {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_LINE) return socket.destroy();
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void this.answer(line).then((answer) => socket.end(`${JSON.stringify(answer)}\n`));
    });
  }

  private async answer(line: string): Promise<ControlAnswer> {
    try {
      const request = JSON.parse(line) as ControlRequest;
      return { ok: true, result: await this.handle(request) };
    } catch (error) {
      const e = error as Error;
      this.log.debug('control-error', { error: e });
      // A P2psipError's message is written for people; anything else is a bug worth naming as one.
      return { ok: false, error: e.message, name: e.name ?? 'Error', internal: !(e instanceof P2psipError) };
    }
  }
}
