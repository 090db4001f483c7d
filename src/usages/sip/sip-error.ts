import { P2psipError } from '../../runtime/errors.js';

/**
 * A SIP message we cannot accept, with the status code to answer it with (RFC 3261 s21):
 * 400 for what does not parse, 413 for what is too large, 416 for an unsupported URI scheme,
 * 505 for another SIP version. `reason` goes into the response's reason phrase.
 */
export class SipError extends P2psipError {
  override readonly name = 'SipError';

  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`${status} ${reason}`);
  }
}

export const badRequest = (reason: string): SipError => new SipError(400, reason);
