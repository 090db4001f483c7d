import type { Socket } from 'node:net';
import { SystemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { parseSipMessage } from '../../src/usages/sip/message/parser.js';
import type { SipMessage } from '../../src/usages/sip/message/sip-message.js';
import { SipService, type SipServiceDeps } from '../../src/usages/sip/sip-service.js';

/**
 * A home's SIP service on loopback for tests: serving `domain`, no digest asked, no users known,
 * on a port of its own; `more` changes any of that (the bind, the clock, credentials, media).
 */
export function loopbackSipService(domain: string, more: Partial<SipServiceDeps> = {}): Promise<SipService> {
  return SipService.start({
    bind: { host: '127.0.0.1', port: 0 },
    advertisedHost: '127.0.0.1',
    realm: domain,
    domains: [domain],
    requireAuth: false,
    credentials: { lookup: () => undefined },
    clock: new SystemClock(),
    log: silentLogger,
    nonceSecret: new Uint8Array(32).fill(7),
    ...more,
  });
}

/** Calls `take` with each SIP message a stream carries, once it is whole (framed by Content-Length). */
export function onSipMessages(socket: Socket, take: (message: SipMessage) => void): void {
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (let end = buffer.indexOf('\r\n\r\n'); end >= 0; end = buffer.indexOf('\r\n\r\n')) {
      const length = Number(/\r\nContent-Length: *(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
      if (buffer.length < end + 4 + length) break;
      take(parseSipMessage(new Uint8Array(Buffer.from(buffer.slice(0, end + 4 + length), 'latin1'))));
      buffer = buffer.slice(end + 4 + length);
    }
  });
}
