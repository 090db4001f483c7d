import { isIP } from 'node:net';
import { DecodeError } from './decode-error.js';
import { readArray, readBytes, readUint } from './schema.js';

/** A transport address. IPv4 and IPv6 as text in memory; compact bytes on the wire. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

const keys = new WeakMap<Address, string>();

/** The same host and port (no string built: it runs per datagram on some paths). */
export function sameAddress(a: Address, b: Address): boolean {
  return a.host === b.host && a.port === b.port;
}

/** "host:port" ("[v6]:port"), cached per address object: it keys the hot per-link maps. */
export function addressKey(address: Address): string {
  let key = keys.get(address);
  if (key === undefined) {
    key = address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
    keys.set(address, key);
  }
  return key;
}

export function parseAddress(text: string, defaultPort?: number): Address {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  let host: string;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const i = text.lastIndexOf(':');
    host = i >= 0 ? text.slice(0, i) : text;
    portText = i >= 0 ? text.slice(i + 1) : undefined;
  }
  if (host === 'localhost') host = '127.0.0.1';
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!isIP(host)) throw new RangeError(`not an IP address: ${text}`);
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`no valid port in ${text}`);
  }
  return { host, port };
}

/** address = [ip: bstr .size 4 / bstr .size 16, port: uint .le 65535] */
export function encodeAddress(address: Address): unknown[] {
  return [ipToBytes(address.host), address.port];
}

export function decodeAddress(value: unknown, path: string): Address {
  const [ip, port] = readArray(value, path, 2, 2);
  const bytes = readBytes(ip, `${path}[0]`, 4, 16);
  if (bytes.length !== 4 && bytes.length !== 16) throw new DecodeError(`${path}[0]`, 'IP must be 4 or 16 bytes');
  return { host: ipFromBytes(bytes), port: readUint(port, `${path}[1]`, 65535) };
}

/**
 * One spelling per IP, so two texts of one address compare equal: lower case, no brackets, IPv6
 * compressed, and an IPv4-mapped IPv6 address (how a socket bound to :: sees an IPv4 peer) as
 * its IPv4. Anything that is not an IP comes back lower-cased.
 */
export function canonicalHost(host: string): string {
  const text = host.replace(/^\[|\]$/g, '').toLowerCase();
  const family = isIP(text);
  if (family !== 6) return text;
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted && isIP(dotted[1]) === 4) return dotted[1];
  if (text.includes('.')) return text; // another embedded-IPv4 spelling: rare enough to leave as written
  const bytes = parseIp(text);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? ipFromBytes(bytes.subarray(12)) : ipFromBytes(bytes);
}

/** The same host however each is written (canonicalHost). */
export function sameHost(a: string, b: string): boolean {
  return a === b || canonicalHost(a) === canonicalHost(b);
}

/**
 * The block a connecting host counts against in per-source limits: an IPv4 address, or an IPv6
 * address's /64 (one home's LAN, which a single host can fill with addresses of its own).
 */
export function sourceBlock(address: string): string {
  const host = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(host) !== 6) return host;
  return `${ipFromBytes(new Uint8Array([...ipToBytes(host).subarray(0, 8), ...new Uint8Array(8)]))}/64`;
}

const encodedIps = new Map<string, Uint8Array>();

/** Cached: a peer encodes the same few dozen neighbour addresses over and over. */
export function ipToBytes(host: string): Uint8Array {
  let bytes = encodedIps.get(host);
  if (!bytes) {
    bytes = parseIp(host);
    if (encodedIps.size >= 4096) encodedIps.clear();
    encodedIps.set(host, bytes);
  }
  return bytes;
}

function parseIp(host: string): Uint8Array {
  if (isIP(host) === 4) return new Uint8Array(host.split('.').map(Number));
  const halves = host.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...head, ...new Array(8 - head.length - tail.length).fill('0'), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

export function ipFromBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
