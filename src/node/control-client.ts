import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { P2psipError } from '../runtime/errors.js';
import { type ControlAnswer, type ControlRequest, controlSocketPath } from './control-protocol.js';

export class PeerNotRunningError extends P2psipError {
  override readonly name = 'PeerNotRunningError';
}

/** The directory's peer is still starting (or its `join` still enrolling): asked again shortly. */
class PeerStartingError extends P2psipError {
  override readonly name = 'PeerStartingError';
}

/** How long a command waits for a peer that is still starting (a line typed, or pasted, right after `start ... &`). */
const STARTING_WAIT_MS = 30_000;

/** Sends one request to the peer running in `dir` and returns its result; waits while it is still starting. */
export async function callPeer(dir: string, request: ControlRequest, timeoutMs = 20_000): Promise<unknown> {
  for (const deadline = Date.now() + STARTING_WAIT_MS; ; await sleep(250)) {
    try {
      return await callOnce(dir, request, timeoutMs);
    } catch (error) {
      if (!(error instanceof PeerStartingError) || Date.now() >= deadline) throw error;
    }
  }
}

function callOnce(dir: string, request: ControlRequest, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(controlSocketPath(dir));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new P2psipError('the peer did not answer in time'));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? new PeerNotRunningError(`no peer is running in ${dir}`) : error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        const answer = JSON.parse(data) as ControlAnswer;
        if (answer.ok) resolve(answer.result);
        else if (answer.name === 'Starting') reject(new PeerStartingError(answer.error));
        else reject(new P2psipError(answer.internal ? `internal error in the peer (${answer.name}): ${answer.error}` : answer.error));
      } catch (error) {
        reject(error);
      }
    });
  });
}
