import { P2psipError } from '../../runtime/errors.js';

/** The authority said no (or would): the reason is for the person at the keyboard. */
export class EnrollmentRefused extends P2psipError {
  override readonly name = 'EnrollmentRefused';
}
