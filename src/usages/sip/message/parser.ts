import { badRequest, SipError } from '../sip-error.js';
import { type SipMessage, SipHeaders } from './sip-message.js';

/*
 * The RFC 3261 message grammar (s7, s25), liberal where the RFC asks (s7.5 leading blank lines,
 * line folding, bare LF line ends, compact header names) and strict where a wrong guess would be
 * dangerous (versions, Content-Length, sizes). Every refusal is a SipError carrying the status
 * code to answer with.
 */
export const MAX_SIP_MESSAGE_BYTES = 65_535;
export const MAX_HEADER_LINES = 256;
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP\/(\d+\.\d+)$/;
const STATUS_LINE = /^SIP\/(\d+\.\d+) (\d{3}) ?(.*)$/;
/**
 * A CR within a line: some parsers end a line at a lone CR, so a header this peer never read would
 * reach them. (Other controls may stand in a quoted-pair, s25.1: RFC 4475's intmeth has NUL and BEL.)
 */
const LONE_CR = /\r/;

/** Where the head ends: the index after the blank line, and the blank line's own index. */
export function findHeadEnd(bytes: Uint8Array, from = 0): { headEnd: number; bodyStart: number } | undefined {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return { headEnd: i, bodyStart: i + 2 };
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return { headEnd: i, bodyStart: i + 3 };
  }
  return undefined;
}

/** Parses one whole message, as a UDP datagram carries it. */
export function parseSipMessage(bytes: Uint8Array): SipMessage {
  if (bytes.length > MAX_SIP_MESSAGE_BYTES) throw new SipError(513, 'Message Too Large');
  let start = 0;
  while (start < bytes.length && (bytes[start] === 0x0d || bytes[start] === 0x0a)) start++; // s7.5
  const end = findHeadEnd(bytes, start);
  if (!end) throw badRequest('no blank line after the headers');
  const head = parseHead(Buffer.from(bytes.buffer, bytes.byteOffset + start, end.headEnd - start).toString('utf8'));
  const available = bytes.length - end.bodyStart;
  const length = head.contentLength ?? available;
  if (length > available) throw badRequest('Content-Length is larger than the message');
  // s18.3: bytes past Content-Length in a datagram are discarded.
  const body = bytes.slice(end.bodyStart, end.bodyStart + length);
  return { ...head.message, body } as SipMessage;
}

type WithoutBody<T> = T extends unknown ? Omit<T, 'body'> : never;

export interface ParsedHead {
  readonly message: WithoutBody<SipMessage>;
  readonly contentLength: number | undefined;
}

/** Parses the start line and headers (the text before the blank line). */
export function parseHead(text: string): ParsedHead {
  const rawLines = text.replace(/\r$/, '').split(/\r?\n/);
  const startLine = rawLines[0];
  const tainted = rawLines.findIndex((line) => LONE_CR.test(line));
  if (tainted >= 0) throw badRequest(`a lone CR on line ${tainted + 1}`);
  const headers = new SipHeaders();
  let current: [string, string] | undefined;
  let count = 0;
  const flush = (): void => {
    if (current) headers.add(current[0], current[1].trim());
  };
  for (let i = 1; i < rawLines.length; i++) {
    const line = rawLines[i];
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // s7.3.1: a line beginning with white space continues the previous header.
      if (!current) throw badRequest('folded line before any header');
      current[1] += ` ${line.trim()}`;
      continue;
    }
    flush();
    if (++count > MAX_HEADER_LINES) throw badRequest('too many header lines');
    const colon = line.indexOf(':');
    if (colon <= 0) throw badRequest(`malformed header line ${i}`);
    const name = line.slice(0, colon).trim();
    if (!TOKEN.test(name)) throw badRequest(`malformed header name on line ${i}`);
    current = [name, line.slice(colon + 1)];
  }
  flush();
  // s7.3.1: Content-Length holds one value; two would leave the message's end a guess.
  if (headers.getAll('Content-Length').length > 1) throw badRequest('more than one Content-Length');
  const contentLengthText = headers.get('Content-Length');
  let contentLength: number | undefined;
  if (contentLengthText !== undefined) {
    if (!/^\d{1,10}$/.test(contentLengthText)) throw badRequest('Content-Length is not a number');
    contentLength = Number(contentLengthText);
    if (contentLength > MAX_SIP_MESSAGE_BYTES) throw new SipError(513, 'Message Too Large');
  }
  const request = REQUEST_LINE.exec(startLine);
  if (request) {
    if (request[3] !== '2.0') throw new SipError(505, 'Version Not Supported');
    return { message: { kind: 'request', method: request[1], uri: request[2], headers }, contentLength };
  }
  const status = STATUS_LINE.exec(startLine);
  if (status) {
    if (status[1] !== '2.0') throw new SipError(505, 'Version Not Supported');
    const code = Number(status[2]);
    if (code < 100 || code > 699) throw badRequest('status code out of range');
    return { message: { kind: 'response', status: code, reason: status[3], headers }, contentLength };
  }
  throw badRequest('malformed start line');
}
