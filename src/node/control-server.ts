import { P2psipError } from '../runtime/errors.js';
import type { Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';
import type { ControlAnswer, ControlRequest } from './control-protocol.js';
import type { DataDirLock } from './data-dir-lock.js';

const MAX_LINE = 64 * 1024;

/** Answers the control socket's requests, one JSON line each; `handle` answers one request. */
export class ControlServer {
  constructor(
    private readonly handle: (request: ControlRequest) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  /** Takes over the control socket the directory's lock holds. */
  listen(lock: DataDirLock): void {
    lock.hand((socket) => this.serve(socket));
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
