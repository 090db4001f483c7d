import { P2psipError } from '../runtime/errors.js';
import { errorCodeName } from '../wire/message-codes.js';

/**
 * A request failed with a RELOAD error code (RFC 6940 s6.3.3.1), either answered by a remote
 * peer or decided locally (a timeout is Error_Request_Timeout).
 */
export class OverlayError extends P2psipError {
  override readonly name = 'OverlayError';
  constructor(
    readonly code: number,
    readonly info: string,
  ) {
    super(`${errorCodeName(code)}: ${info}`);
  }
}
