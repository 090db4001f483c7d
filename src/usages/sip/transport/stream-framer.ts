import { badRequest, SipError } from '../sip-error.js';
import { findHeadEnd, MAX_SIP_MESSAGE_BYTES, parseHead } from '../message/parser.js';
import type { SipMessage } from '../message/sip-message.js';

/*
 * Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 s18.3, which makes it
 * mandatory on streams), and recognises RFC 5626 s3.5.1 keepalives: a double CRLF ("ping") is
 * to be answered with a single CRLF ("pong"); a lone CRLF is a pong and is skipped.
 */
export type StreamItem = { readonly kind: 'message'; readonly message: SipMessage } | { readonly kind: 'ping' };

export class SipStreamFramer {
  private buffer: Uint8Array = new Uint8Array(0);

  /** Adds received bytes and returns every item now complete. Throws SipError (then close the stream). */
  push(chunk: Uint8Array): StreamItem[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer, 0);
    joined.set(chunk, this.buffer.length);
    this.buffer = joined;
    const items: StreamItem[] = [];
    for (let guard = 0; guard < 1000; guard++) {
      const item = this.next();
      if (!item) break;
      items.push(item);
    }
    if (this.buffer.length > MAX_SIP_MESSAGE_BYTES) throw new SipError(513, 'Message Too Large');
    return items;
  }

  private next(): StreamItem | undefined {
    const b = this.buffer;
    if (b.length >= 4 && b[0] === 0x0d && b[1] === 0x0a && b[2] === 0x0d && b[3] === 0x0a) {
      this.buffer = b.subarray(4);
      return { kind: 'ping' };
    }
    if (b.length >= 2 && b[0] === 0x0d && b[1] === 0x0a && !(b.length >= 3 && b[2] === 0x0d)) {
      this.buffer = b.subarray(2);
      return this.next();
    }
    const end = findHeadEnd(b);
    if (!end) return undefined;
    const head = parseHead(Buffer.from(b.buffer, b.byteOffset, end.headEnd).toString('utf8'));
    if (head.contentLength === undefined) throw badRequest('Content-Length is required on a stream');
    if (b.length - end.bodyStart < head.contentLength) return undefined;
    const body = b.slice(end.bodyStart, end.bodyStart + head.contentLength);
    this.buffer = b.subarray(end.bodyStart + head.contentLength);
    return { kind: 'message', message: { ...head.message, body } as SipMessage };
  }
}
