import type { SipMessage } from './sip-message.js';

const encoder = new TextEncoder();

/**
 * Writes a message with CRLF line ends and a Content-Length that matches the body (set on every
 * message so the same bytes frame correctly on TCP, s18.3).
 */
export function serializeSipMessage(message: SipMessage): Uint8Array {
  const start = message.kind === 'request' ? `${message.method} ${message.uri} SIP/2.0` : `SIP/2.0 ${message.status} ${message.reason}`;
  const lines = [start];
  for (const [name, value] of message.headers.lines()) if (name !== 'Content-Length') lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${message.body.length}`, '', '');
  const head = encoder.encode(lines.join('\r\n'));
  const out = new Uint8Array(head.length + message.body.length);
  out.set(head, 0);
  out.set(message.body, head.length);
  return out;
}
