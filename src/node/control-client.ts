import { connect } from 'node:net';
import { P2psipError } from '../runtime/errors.js';
import { type ControlAnswer, type ControlRequest, controlSocketPath } from './control-protocol.js';

export class PeerNotRunningError extends P2psipError {
  override readonly name = 'PeerNotRunningError';
}

/** Sends one request to the peer running in `dir` and returns its result. */
export function callPeer(dir: string, request: ControlRequest, timeoutMs = 20_000): Promise<unknown> {
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
        else reject(new P2psipError(answer.internal ? `internal error in the peer (${answer.name}): ${answer.error}` : answer.error));
      } catch (error) {
        reject(error);
      }
    });
  });
}
