import { badRequest, SipError } from '../sip-error.js';
import { findHeadEnd, MAX_SIP_MESSAGE_BYTES, type ParsedHead, parseHead } from '../message/parser.js';
import type { SipMessage } from '../message/sip-message.js';

/*
 * Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 s18.3, which makes it
 * mandatory on streams), and recognises RFC 5626 s3.5.1 keepalives: a double CRLF ("ping") is
 * to be answered with a single CRLF ("pong"); a lone CRLF is a pong and is skipped. A CRLF at
 * the end of what has arrived may be half a ping, so it waits for the next byte.
 */
const PING = [0x0d, 0x0a, 0x0d, 0x0a];
const SMALL_STORE_BYTES = 4096;
/** True for "\r", "\r\n" or "\r\n\r": too short yet to tell a ping from a pong. */
const keepaliveSoFar = (b: Uint8Array): boolean => b.length < PING.length && b.every((byte, i) => byte === PING[i]);
export type StreamItem = { readonly kind: 'message'; readonly message: SipMessage } | { readonly kind: 'ping' };

export class SipStreamFramer {
  // Received bytes not yet framed are store[start, end): appending copies each byte once (the
  // store doubles, or what is left is moved to its front), and the search for the blank line
  // goes on from where it stopped, so a sender trickling a message byte by byte costs linear
  // work, not quadratic.
  private store = new Uint8Array(SMALL_STORE_BYTES);
  private start = 0;
  private end = 0;
  /** Bytes of the pending message already searched for the blank line. */
  private searched = 0;
  /** The pending message's head, once read, while its body is still arriving. */
  private head: { bodyStart: number; contentLength: number; message: ParsedHead['message'] } | undefined;

  /** Bytes received and not yet part of a whole message (a keepalive's first bytes are not). */
  get pending(): number {
    return keepaliveSoFar(this.store.subarray(this.start, this.end)) ? 0 : this.end - this.start;
  }

  /** Bytes of room the framer holds for this connection. */
  get capacity(): number {
    return this.store.length;
  }

  /** Adds received bytes and returns every item now complete. Throws SipError (then close the stream). */
  push(chunk: Uint8Array): StreamItem[] {
    this.append(chunk);
    const items: StreamItem[] = [];
    for (let guard = 0; guard < 1000; guard++) {
      const item = this.next();
      if (!item) break;
      items.push(item);
    }
    if (this.pending > MAX_SIP_MESSAGE_BYTES) throw new SipError(513, 'Message Too Large');
    return items;
  }

  private append(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.store.length) {
      // Every byte held moves, a keepalive's first bytes too (`pending` does not count those).
      const held = this.end - this.start;
      const needed = held + chunk.length;
      const store = needed > this.store.length ? new Uint8Array(Math.max(needed, this.store.length * 2)) : this.store;
      store.set(this.store.subarray(this.start, this.end), 0);
      this.store = store;
      this.end = held;
      this.start = 0;
    }
    this.store.set(chunk, this.end);
    this.end += chunk.length;
  }

  private consume(count: number): void {
    this.start += count;
    this.searched = 0;
    this.head = undefined;
    if (this.start !== this.end) return;
    this.start = this.end = 0;
    // One large message grew the store; an idle connection goes back to holding little.
    if (this.store.length > SMALL_STORE_BYTES) this.store = new Uint8Array(SMALL_STORE_BYTES);
  }

  private next(): StreamItem | undefined {
    const b = this.store.subarray(this.start, this.end);
    if (!this.head) {
      if (keepaliveSoFar(b)) return undefined;
      if (b.length >= 4 && b[0] === 0x0d && b[1] === 0x0a && b[2] === 0x0d && b[3] === 0x0a) {
        this.consume(4);
        return { kind: 'ping' };
      }
      if (b.length >= 3 && b[0] === 0x0d && b[1] === 0x0a && b[2] !== 0x0d) {
        this.consume(2);
        return this.next();
      }
      const end = findHeadEnd(b, this.searched);
      if (!end) {
        this.searched = Math.max(0, b.length - 2); // a CRLF may still be cut at the end
        return undefined;
      }
      const head = parseHead(Buffer.from(b.buffer, b.byteOffset, end.headEnd).toString('utf8'));
      if (head.contentLength === undefined) throw badRequest('Content-Length is required on a stream');
      this.head = { bodyStart: end.bodyStart, contentLength: head.contentLength, message: head.message };
    }
    const { bodyStart, contentLength, message } = this.head;
    if (b.length - bodyStart < contentLength) return undefined;
    const body = b.slice(bodyStart, bodyStart + contentLength);
    this.consume(bodyStart + contentLength);
    return { kind: 'message', message: { ...message, body } as SipMessage };
  }
}
