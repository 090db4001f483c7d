import { readText, readUint } from '../schema.js';
import { arrayBody } from './body-codec.js';

/*
 * RFC 6940 s6.3.3.1 error response, sent with message code 0xffff.
 *
 *   error-ans = [error-code: uint, error-info: tstr]
 */
export interface ErrorAns {
  readonly code: number;
  readonly info: string;
}

export const errorAns = arrayBody<ErrorAns>(
  'errorAns',
  2,
  2,
  (v) => [v.code, v.info],
  (f, p) => ({ code: readUint(f[0], `${p}.code`, 0xffff), info: readText(f[1], `${p}.info`, 1024) }),
);
