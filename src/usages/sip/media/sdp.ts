import { isIP } from 'node:net';
import { SipError } from '../sip-error.js';

/*
 * SDP (RFC 8866) as the home peer needs it to anchor a call's media (issue 16): read an offer or
 * answer into its media lines, and write it back with every stream pointed at the peer's own
 * ports. Lines the peer does not change stay as the phone wrote them, in order. SDP that cannot
 * be read is refused with 488 and a reason, before anything is forwarded.
 */
export const MAX_SDP_BYTES = 16 * 1024;
const MAX_MEDIA = 16;

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

/** ICE (RFC 8839) attributes: the anchor answers for the phone, which then needs none of them. */
const ICE_ATTRIBUTES = new Set(['candidate', 'remote-candidates', 'ice-ufrag', 'ice-pwd', 'ice-options', 'ice-lite', 'ice-mismatch', 'end-of-candidates']);

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** One m= section as it arrived. */
export interface MediaStream {
  readonly kind: string;
  /** 0: the stream is refused or disabled (RFC 3264 s6); it is left alone. */
  readonly port: number;
  readonly proto: string;
  readonly formats: readonly string[];
  /** Where the phone wants RTP: the section's c= or else the session's. */
  readonly rtp: Endpoint;
  /** Where it wants RTCP when RTCP has a port of its own: a=rtcp (RFC 3605), else port + 1. */
  readonly rtcp: Endpoint;
  /** It offers or accepts RTCP on the RTP port (a=rtcp-mux); in use only when offer and answer both say so. */
  readonly rtcpMux: boolean;
  readonly direction: Direction;
  /** a=rtpmap values by payload type ("0" -> "PCMU/8000"). */
  readonly codecs: ReadonlyMap<string, string>;
  /** SRTP keys (RFC 4568 a=crypto) or an SRTP profile: the media passes through untouched. */
  readonly secure: boolean;
}

export interface SessionDescription {
  readonly lines: readonly string[];
  readonly streams: readonly MediaStream[];
}

export class SdpError extends SipError {
  constructor(reason: string) {
    super(488, `Not Acceptable Here (SDP: ${reason})`);
  }
}

/** Any control character but TAB, once lines are split at CRLF or LF. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Reads SDP text; refuses (SdpError, 488) what is not SDP a stream can be anchored from. */
export function parseSdp(body: Uint8Array | string): SessionDescription {
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (text.length > MAX_SDP_BYTES) throw new SdpError('too large');
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== 'v=0') throw new SdpError('does not start with v=0');
  let sessionConnection: string | undefined;
  let sessionDirection: Direction = 'sendrecv';
  const sections: { start: number; lines: string[] }[] = [];
  lines.forEach((line, i) => {
    if (!/^[a-z]=/.test(line)) throw new SdpError(`line ${i + 1} is not type=value`);
    // A lone CR ends a line for some phones' parsers: a line the anchor never read would reach them.
    if (CONTROL.test(line)) throw new SdpError(`line ${i + 1} holds a control character`);
    // The origin is the session's (RFC 8866 s5): one inside a media section would go on unrewritten, a LAN address with it.
    if (line.startsWith('o=') && sections.length) throw new SdpError(`line ${i + 1}: an o= line inside a media section`);
    if (line.startsWith('m=')) {
      if (sections.length >= MAX_MEDIA) throw new SdpError(`more than ${MAX_MEDIA} media lines`);
      sections.push({ start: i, lines: [line] });
    } else if (sections.length) sections[sections.length - 1].lines.push(line);
    else if (line.startsWith('c=')) sessionConnection = readConnection(line);
    else if (DIRECTIONS.has(line.slice(2))) sessionDirection = line.slice(2) as Direction;
  });
  const origins = lines.filter((l) => l.startsWith('o='));
  if (origins.length !== 1 || !/^o=\S+ \S+ \d{1,19} IN IP[46] \S+$/.test(origins[0])) throw new SdpError('missing, repeated or malformed o= line');
  const streams = sections.map((section) => readStream(section.lines, sessionConnection, sessionDirection));
  return { lines, streams };
}

function readStream(lines: string[], sessionConnection: string | undefined, sessionDirection: Direction): MediaStream {
  const m = /^m=([a-z]+) (\d{1,5})(?:\/\d+)? ([A-Za-z0-9/._-]+)((?: [^ ]+)*)$/.exec(lines[0]);
  if (!m || Number(m[2]) > 65535) throw new SdpError(`malformed media line "${lines[0].slice(0, 60)}"`);
  const port = Number(m[2]);
  const c = lines.find((l) => l.startsWith('c='));
  const address = c ? readConnection(c) : sessionConnection;
  if (address === undefined && port !== 0) throw new SdpError(`no connection address for ${m[1]}`);
  const attributes = lines.filter((l) => l.startsWith('a=')).map((l) => l.slice(2));
  const value = (name: string) => attributes.find((a) => a.startsWith(`${name}:`))?.slice(name.length + 1);
  const rtcpMux = attributes.includes('rtcp-mux');
  const rtcpAttribute = value('rtcp');
  let rtcp: Endpoint = { address: address ?? '0.0.0.0', port: port === 0 ? 0 : port + 1 };
  if (rtcpAttribute !== undefined) {
    const r = /^(\d{1,5})(?: IN IP[46] (\S+))?$/.exec(rtcpAttribute);
    if (!r) throw new SdpError(`malformed a=rtcp "${rtcpAttribute.slice(0, 40)}"`);
    rtcp = { address: r[2] === undefined ? rtcp.address : checkedAddress(r[2]), port: Number(r[1]) };
  }
  if (rtcp.port > 65535) throw new SdpError(`RTCP port ${rtcp.port} is beyond 65535`);
  const codecs = new Map<string, string>();
  for (const a of attributes) {
    const r = /^rtpmap:(\d{1,3}) (.+)$/.exec(a);
    if (r) codecs.set(r[1], r[2]);
  }
  const direction = (attributes.find((a) => DIRECTIONS.has(a)) as Direction | undefined) ?? sessionDirection;
  return {
    kind: m[1],
    port,
    proto: m[3],
    formats: m[4].trim().split(' ').filter(Boolean),
    rtp: { address: address ?? '0.0.0.0', port },
    rtcp,
    rtcpMux,
    direction,
    codecs,
    secure: m[3].includes('SAVP') || attributes.some((a) => a.startsWith('crypto:') || a.startsWith('fingerprint:')),
  };
}

/** Where a party receives RTCP: on its RTP port when rtcp-mux is in use (RFC 5761), else its RTCP port. */
export function rtcpEndpoint(stream: MediaStream, muxed: boolean): Endpoint {
  return muxed ? stream.rtp : stream.rtcp;
}

/** c=IN IP4 192.0.2.1 (a multicast TTL suffix is refused: the anchor relays unicast only). */
function readConnection(line: string): string {
  const c = /^c=IN IP([46]) ([0-9A-Fa-f.:]+)$/.exec(line);
  if (!c) throw new SdpError(`malformed connection line "${line.slice(0, 60)}"`);
  return checkedAddress(c[2]);
}

/** An IP literal of the family it claims (a name such as "cafe" would cost a DNS lookup per packet). */
function checkedAddress(address: string): string {
  if (isIP(address) === 0) throw new SdpError(`"${address.slice(0, 40)}" is not an IP address`);
  return address;
}

/** Where the anchor takes each stream: its address, and per m= section the RTP port (RTCP is port + 1). */
export interface AnchorPlan {
  readonly address: string;
  /** One per m= section; undefined for a section the call does not anchor (disabled in its first offer): it goes out disabled. */
  readonly ports: readonly (number | undefined)[];
  /**
   * A c=0.0.0.0 goes on as it is: in a call already answered it is a hold (RFC 3264 s8.4); in a
   * first offer it may only mean "no address yet" (trickle ICE), and the anchor's address does.
   */
  readonly keepHold?: boolean;
}

/**
 * The same description pointed at the anchor: every anchored stream's port, c= and a=rtcp name
 * the anchor, ICE attributes go (the phone talks to the anchor directly), the o= line names the
 * anchor with its version raised (RFC 3264 s8: a changed description is a new version), and
 * everything else is kept. No address of the phone's goes on: a c= names the anchor, or stays
 * 0.0.0.0 (an RFC 2543 hold, which the far phone must hear of: see keepHold), and a stream the call has no
 * ports for (one disabled at first and offered again) goes out disabled, port 0 (RFC 3264 s8.2).
 */
export function anchorSdp(sdp: SessionDescription, plan: AnchorPlan): string {
  const family = plan.address.includes(':') ? 'IP6' : 'IP4';
  const anchorConnection = `c=IN ${family} ${plan.address}`;
  const held = (address: string) => plan.keepHold === true && isUnspecified(address);
  const connection = (line: string) => (held(line.slice(line.lastIndexOf(' ') + 1)) ? line : anchorConnection);
  const out: string[] = [];
  let section = -1;
  let anchored = false;
  for (const line of sdp.lines) {
    if (line.startsWith('m=')) {
      section++;
      const stream = sdp.streams[section];
      const port = plan.ports[section];
      anchored = port !== undefined && stream.port !== 0;
      out.push(line.replace(/^(m=[a-z]+ )\d+(\/\d+)?/, `$1${anchored ? port : 0}`));
      if (anchored) out.push(held(stream.rtp.address) ? `c=IN ${stream.rtp.address === '::' ? 'IP6' : 'IP4'} ${stream.rtp.address}` : anchorConnection);
      continue;
    }
    if (section < 0) {
      if (line.startsWith('o=')) out.push(nextVersion(line, family, plan.address));
      else if (line.startsWith('c=')) out.push(connection(line));
      else if (!isIceLine(line)) out.push(line);
      continue;
    }
    if (!anchored) {
      // Disabled: where it would have gone (its ICE candidates, its RTCP address) says nothing but the phone's address.
      if (line.startsWith('c=')) out.push(connection(line));
      else if (!isIceLine(line) && !line.startsWith('a=rtcp:')) out.push(line);
      continue;
    }
    if (line.startsWith('c=') || isIceLine(line)) continue;
    if (line.startsWith('a=rtcp:')) out.push(`a=rtcp:${plan.ports[section]! + 1} IN ${family} ${plan.address}`);
    else out.push(line);
  }
  return `${out.join('\r\n')}\r\n`;
}

/**
 * The o= version after `version`. Versions have at most 19 digits here (parseSdp), so the count
 * wraps to 0 past that: SDP the anchor sends on is always SDP it would read itself (fuzz review F3).
 */
export function nextSdpVersion(version: bigint): bigint {
  return (version + 1n) % 10n ** 19n;
}

/** c=IN IP4 0.0.0.0 (or IP6 ::): "send me nothing", the old way to hold a call (RFC 3264 s8.4). */
export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

function isIceLine(line: string): boolean {
  if (!line.startsWith('a=')) return false;
  const name = line.slice(2).split(':', 1)[0];
  return ICE_ATTRIBUTES.has(name);
}

/** o=<user> <sess-id> <sess-version> IN IP4 <address>: a new version, from the anchor (no LAN address leaves the home). */
function nextVersion(line: string, family: string, address: string): string {
  const parts = line.split(' ');
  parts[2] = nextSdpVersion(BigInt(parts[2])).toString();
  parts[4] = family;
  parts[5] = address;
  return parts.join(' ');
}
