import { P2psipError } from '../runtime/errors.js';

/**
 * Raised by every decoder for input that is not a well-formed message of the expected shape.
 * `path` names the offending field (e.g. "$.header.via[2]") so a bad peer can be diagnosed.
 */
export class DecodeError extends P2psipError {
  override readonly name = 'DecodeError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}
