import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Logger } from '../runtime/log.js';
import { UdpLink } from '../link/udp-link.js';
import type { PortMappingIo } from '../nat/port-mapping/port-mapper.js';

/*
 * The real I/O a port mapper needs on a device: the default gateway from the kernel's routing
 * table (Linux /proc/net/route), UDP sockets, and small HTTP requests for UPnP.
 */
const HTTP_TIMEOUT_MS = 3_000;
const MAX_BODY = 64 * 1024;

export function systemPortMappingIo(log: Logger): PortMappingIo {
  return {
    gateway: defaultGateway,
    openSocket: (bind) => UdpLink.open(bind, log),
    http: (url, method, headers, body) =>
      new Promise((resolve, reject) => {
        // A router that stalls mid-answer must not hold us: the whole exchange has one deadline.
        const deadline = setTimeout(() => request.destroy(new Error('timed out')), HTTP_TIMEOUT_MS);
        const settle = <T>(finish: (value: T) => void) => (value: T) => {
          clearTimeout(deadline);
          finish(value);
        };
        const request = http.request(url, { method, agent: false, headers: { ...headers, ...(body ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) }, timeout: HTTP_TIMEOUT_MS }, (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
            if (text.length > MAX_BODY) request.destroy(new Error('answer too large'));
          });
          response.on('error', settle(reject));
          response.on('aborted', () => settle(reject)(new Error('answer cut short')));
          response.on('end', () => settle(resolve)({ status: response.statusCode ?? 0, body: text }));
        });
        request.on('timeout', () => request.destroy(new Error('timed out')));
        request.on('error', settle(reject));
        request.end(body);
      }),
  };
}

/** The IPv4 default gateway, or undefined (no default route, or not Linux). */
export function defaultGateway(): string | undefined {
  let table: string;
  try {
    table = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of table.split('\n').slice(1)) {
    const [, destination, gateway] = line.trim().split(/\s+/);
    if (destination !== '00000000' || !gateway || gateway === '00000000') continue;
    // Little-endian hex: "0101A8C0" is 192.168.1.1.
    const n = Number.parseInt(gateway, 16);
    return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff].join('.');
  }
  return undefined;
}
