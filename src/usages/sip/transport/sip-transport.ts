import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { isIP } from 'node:net';
import { KeyCounts } from '../../../runtime/key-counts.js';
import type { Logger } from '../../../runtime/log.js';
import { type Address, addressKey, sameAddress, sourceBlock } from '../../../wire/address.js';
import { parseSipMessage } from '../message/parser.js';
import type { SipMessage } from '../message/sip-message.js';
import { SipError } from '../sip-error.js';
import { SipStreamFramer } from './stream-framer.js';

/*
 * SIP over UDP and TCP on one port number (RFC 3261 s18), the edge where the SIP usage meets the
 * network. A message comes up with where it came from: the UDP source address (what rport and
 * received describe, RFC 3581) or the TCP connection, on which answers and later requests to
 * that phone go back (the registered flow, RFC 5626 style). Malformed input never unwinds into
 * the sockets: it is counted and handed up as a refusal so that a 400 can be sent where one
 * can be formed.
 */
export type SipTransportName = 'UDP' | 'TCP' | 'OVERLAY';

export interface SipFlow {
  readonly transport: SipTransportName;
  /** The far end as the network shows it (for OVERLAY, its last known address, informative only). */
  readonly remote: Address;
  /** The TCP connection, for flows over TCP. */
  readonly connectionId?: number;
  /** The peer at the far end (hex Node-ID): for flows through the overlay, and ours straight to another home peer. */
  readonly nodeId?: string;
}

/** The same flow: one TCP connection, one UDP source address, or one peer of the overlay. */
export function sameFlow(a: SipFlow, b: SipFlow): boolean {
  if (a.transport !== b.transport) return false;
  if (a.transport === 'TCP') return a.connectionId === b.connectionId;
  if (a.transport === 'OVERLAY') return a.nodeId === b.nodeId;
  return sameAddress(a.remote, b.remote);
}

/** Carries a SIP message to a peer through the overlay (the node layer provides it). */
export type OverlaySender = (nodeId: string, bytes: Uint8Array) => void;

export interface SipTransportCounters {
  udpReceived: number;
  tcpReceived: number;
  overlayReceived: number;
  sent: number;
  malformed: number;
  keepalivesAnswered: number;
  connectionsOpened: number;
  connectionsClosed: number;
  /** Connections refused or not opened: their host already held MAX_CONNECTIONS_PER_HOST, or MAX_CONNECTIONS were open. */
  connectionsRefused: number;
  /** Connections cut: idle, a message left unfinished, output left unread, or input past the shared budget. */
  connectionsCut: number;
  sendFailures: number;
}

export type MessageHandler = (message: SipMessage, flow: SipFlow) => void;
export type MalformedHandler = (error: SipError, bytes: Uint8Array, flow: SipFlow) => void;

const MAX_CONNECTIONS = 512;
/** Connections with one host (an IPv6 /64), its and ours: a phone keeps one or two, a home peer one. */
const MAX_CONNECTIONS_PER_HOST = 16;
/** A registered phone's connection lives with its binding (keepOpen); any other this long idle. */
const IDLE_CONNECTION_MS = 15 * 60_000;
const IDLE_UNREGISTERED_MS = 2 * 60_000;
/** A message begun must be whole within this: bytes trickled one by one do not hold a connection. */
const PARTIAL_MESSAGE_MS = 30_000;
/** Output a connection may leave unread before it is dropped (a client that asks and never reads). */
const MAX_UNSENT_BYTES = 256 * 1024;
/**
 * Unfinished input all connections may hold together (each holds at most 64 KiB). Past it, a
 * connection that adds to more than a phone's message is cut: 32 hosts with 16 connections
 * each would otherwise hold 32 MiB.
 */
const MAX_UNFRAMED_BYTES = 4 * 1024 * 1024;
const PHONE_MESSAGE_BYTES = 8 * 1024;
/** How long a connection of ours may take to be made. */
const CONNECT_TIMEOUT_MS = 5_000;
/** After a framing error: time for our error response to leave before the connection is cut. */
const CLOSE_AFTER_ERROR_MS = 2_000;

export class SipTransport {
  readonly counters: SipTransportCounters = { udpReceived: 0, tcpReceived: 0, overlayReceived: 0, sent: 0, malformed: 0, keepalivesAnswered: 0, connectionsOpened: 0, connectionsClosed: 0, connectionsRefused: 0, connectionsCut: 0, sendFailures: 0 };
  private messageHandler: MessageHandler = () => {};
  private overlaySender: OverlaySender | undefined;
  private malformedHandler: MalformedHandler = () => {};
  private readonly connections = new Map<number, Socket>();
  /** Accepted connections by host (sourceBlock: an IPv6 /64 is one host). */
  private readonly perHost = new KeyCounts();
  /** Connections we opened, by the address they go to. */
  private readonly outgoing = new Map<string, number>();
  private connectFailedHandler: (connectionId: number) => void = () => {};
  private nextConnectionId = 1;
  private closed = false;
  /** Bytes of unfinished messages all connections hold (MAX_UNFRAMED_BYTES). */
  private unframed = 0;

  private constructor(
    private readonly udp: SocketAsPromised,
    private readonly tcp: Server,
    readonly localAddress: Address,
    private readonly log: Logger,
  ) {}

  static async open(bind: Address, log: Logger): Promise<SipTransport> {
    let transport: SipTransport | undefined;
    const udp = DgramAsPromised.createSocket({ type: isIP(bind.host) === 6 ? 'udp6' : 'udp4', reuseAddr: false }, (msg, rinfo) => {
      transport?.receiveDatagram(new Uint8Array(msg), { host: rinfo.address, port: rinfo.port });
    });
    const bound = await udp.bind(bind.port, bind.host);
    udp.socket.on('error', (error) => log.debug('udp-error', { error }));
    const tcp = createServer((socket) => transport?.accept(socket));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(bound.port, bind.host, () => resolve());
    });
    tcp.on('error', (error) => log.warn('tcp-error', { error }));
    transport = new SipTransport(udp, tcp, { host: bound.address, port: bound.port }, log);
    return transport;
  }

  get unframedBytes(): number {
    return this.unframed;
  }

  onMessage(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  onMalformed(handler: MalformedHandler): void {
    this.malformedHandler = handler;
  }

  /** Lets SIP travel inside overlay messages to peers with no direct path (RFC 7904 s4's fallback). */
  setOverlaySender(sender: OverlaySender): void {
    this.overlaySender = sender;
  }

  /** A SIP message that came through the overlay from peer `nodeId`. */
  receiveFromOverlay(bytes: Uint8Array, nodeId: string, remote: Address): void {
    if (this.closed) return;
    this.counters.overlayReceived++;
    this.parseAndDeliver(bytes, { transport: 'OVERLAY', remote, nodeId });
  }

  /** Sends on a flow: the TCP connection it names, the overlay to its peer, or a UDP datagram to its address. */
  send(flow: SipFlow, bytes: Uint8Array): boolean {
    if (this.closed) return false;
    if (flow.transport === 'OVERLAY') {
      if (!this.overlaySender || !flow.nodeId) {
        this.counters.sendFailures++;
        return false;
      }
      this.overlaySender(flow.nodeId, bytes);
    } else if (flow.transport === 'TCP') {
      const socket = flow.connectionId !== undefined ? this.connections.get(flow.connectionId) : undefined;
      if (!socket || socket.destroyed) {
        this.counters.sendFailures++;
        return false;
      }
      if (!this.write(socket, bytes)) {
        this.counters.sendFailures++;
        return false;
      }
    } else {
      this.udp.send(bytes, flow.remote.port, flow.remote.host).catch((error: Error) => {
        this.counters.sendFailures++;
        this.log.debug('udp-send-failed', { to: addressKey(flow.remote), error });
      });
    }
    this.counters.sent++;
    return true;
  }

  hasConnection(connectionId: number): boolean {
    const socket = this.connections.get(connectionId);
    return socket !== undefined && !socket.destroyed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.connections.values()) socket.destroy();
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    await this.udp.close();
  }

  private receiveDatagram(bytes: Uint8Array, remote: Address): void {
    if (this.closed) return;
    const flow: SipFlow = { transport: 'UDP', remote };
    if (isKeepalive(bytes)) {
      // RFC 5626 s3.5.1 style, as phones send it over UDP too: answer a ping with a pong.
      if (bytes.length === 4) {
        this.counters.keepalivesAnswered++;
        this.send(flow, CRLF);
      }
      return;
    }
    this.counters.udpReceived++;
    this.parseAndDeliver(bytes, flow);
  }

  /** A whole message (a datagram, or a tunnelled one): parsed, then handed up or refused. */
  private parseAndDeliver(bytes: Uint8Array, flow: SipFlow): void {
    let message: SipMessage;
    try {
      message = parseSipMessage(bytes);
    } catch (error) {
      this.refused(error, bytes, flow);
      return;
    }
    this.deliver(message, flow);
  }

  private accept(socket: Socket): void {
    const host = sourceBlock(socket.remoteAddress ?? '0.0.0.0');
    if (this.closed || this.connections.size >= MAX_CONNECTIONS || this.perHost.of(host) >= MAX_CONNECTIONS_PER_HOST) {
      if (!this.closed) this.counters.connectionsRefused++;
      socket.destroy();
      return;
    }
    this.perHost.add(host);
    socket.once('close', () => this.perHost.remove(host));
    this.adopt(socket, { host: socket.remoteAddress ?? '0.0.0.0', port: socket.remotePort ?? 0 });
  }

  /** Writes unless the other end has left too much unread: then the connection is cut. */
  private write(socket: Socket, bytes: Uint8Array): boolean {
    if (socket.writableLength + bytes.length > MAX_UNSENT_BYTES) {
      this.cut(socket, 'output-unread');
      return false;
    }
    socket.write(bytes);
    return true;
  }

  private cut(socket: Socket, why: string): void {
    if (socket.destroyed) return;
    this.counters.connectionsCut++;
    this.log.debug('tcp-connection-cut', { from: `${socket.remoteAddress}:${socket.remotePort}`, why });
    socket.destroy();
  }

  /**
   * A TCP flow of our own to `remote` (RFC 3261 s18.1.1: requests too large for UDP go over TCP),
   * reusing one we opened before while it lives. Writes wait for the connection; if it cannot be
   * made, the flow is closed and later sends on it fail.
   */
  connect(remote: Address): SipFlow | undefined {
    const key = addressKey(remote);
    const existing = this.outgoing.get(key);
    if (existing !== undefined && this.hasConnection(existing)) return { transport: 'TCP', remote, connectionId: existing };
    // Ours count against the host as its own do: a stranger naming port after port gets 16 of the 512.
    const host = sourceBlock(remote.host);
    if (this.closed || this.connections.size >= MAX_CONNECTIONS || this.perHost.of(host) >= MAX_CONNECTIONS_PER_HOST) {
      if (!this.closed) this.counters.connectionsRefused++;
      return undefined;
    }
    this.perHost.add(host);
    const socket = createConnection({ host: remote.host, port: remote.port });
    socket.once('close', () => this.perHost.remove(host));
    const flow = this.adopt(socket, remote);
    this.outgoing.set(key, flow.connectionId!);
    let connected = false;
    // A host that drops the SYN would hold the request until Timer B; give up sooner (then 430 or 503).
    const deadline = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
    deadline.unref();
    socket.once('connect', () => {
      connected = true;
      clearTimeout(deadline);
    });
    socket.once('close', () => {
      if (this.outgoing.get(key) === flow.connectionId) this.outgoing.delete(key);
      // Never connected (refused, unreachable): what was sent on it did not go (s18.1.1, s8.1.3.1).
      if (!connected) this.connectFailedHandler(flow.connectionId!);
    });
    return flow;
  }

  /** Told when a TCP connection of our own could not be made, so its requests fail at once (503). */
  onConnectFailed(handler: (connectionId: number) => void): void {
    this.connectFailedHandler = handler;
  }

  /** Restarts a connection's idle timer: a registered phone's flow lives as long as its binding. */
  keepOpen(connectionId: number): void {
    this.connections.get(connectionId)?.setTimeout(IDLE_CONNECTION_MS);
  }

  private adopt(socket: Socket, remote: Address): SipFlow {
    const id = this.nextConnectionId++;
    this.connections.set(id, socket);
    this.counters.connectionsOpened++;
    const flow: SipFlow = { transport: 'TCP', remote, connectionId: id };
    const framer = new SipStreamFramer();
    let framingLost = false;
    let partial: ReturnType<typeof setTimeout> | undefined;
    socket.setTimeout(IDLE_UNREGISTERED_MS);
    socket.on('timeout', () => this.cut(socket, framingLost ? 'framing-lost' : 'idle'));
    // This connection's share of unframedBytes.
    let held = 0;
    const release = () => {
      this.unframed -= held;
      held = 0;
    };
    socket.on('data', (chunk: Buffer) => {
      if (framingLost) return;
      let items;
      try {
        items = framer.push(new Uint8Array(chunk));
      } catch (error) {
        // The stream has lost its framing: nothing after this can be trusted or need be read.
        framingLost = true;
        release();
        this.refused(error, new Uint8Array(chunk), flow);
        socket.end();
        socket.pause();
        socket.setTimeout(CLOSE_AFTER_ERROR_MS);
        return;
      }
      this.unframed += framer.pending - held;
      held = framer.pending;
      if (this.unframed > MAX_UNFRAMED_BYTES && held > PHONE_MESSAGE_BYTES) {
        release();
        this.cut(socket, 'unframed-over-budget');
        return;
      }
      // An unfinished message has PARTIAL_MESSAGE_MS from its first byte, or from the last whole message.
      if (items.length > 0 || framer.pending === 0) {
        clearTimeout(partial);
        partial = undefined;
      }
      if (framer.pending > 0 && !partial) {
        partial = setTimeout(() => this.cut(socket, 'message-unfinished'), PARTIAL_MESSAGE_MS);
        partial.unref();
      }
      for (const item of items) {
        if (item.kind === 'ping') {
          this.counters.keepalivesAnswered++;
          if (!this.write(socket, CRLF.subarray(0, 2))) return;
          continue;
        }
        this.counters.tcpReceived++;
        this.deliver(item.message, flow);
      }
    });
    socket.on('error', (error) => this.log.debug('tcp-connection-error', { error }));
    socket.on('close', () => {
      clearTimeout(partial);
      release();
      this.connections.delete(id);
      this.counters.connectionsClosed++;
    });
    return flow;
  }

  private deliver(message: SipMessage, flow: SipFlow): void {
    try {
      this.messageHandler(message, flow);
    } catch (error) {
      if (error instanceof SipError) this.malformedHandler(error, new Uint8Array(0), flow);
      else this.log.error('sip-handler-fault', { error });
    }
  }

  private refused(error: unknown, bytes: Uint8Array, flow: SipFlow): void {
    this.counters.malformed++;
    if (error instanceof SipError) this.malformedHandler(error, bytes, flow);
    else this.log.error('sip-parser-fault', { error });
  }
}

const CRLF = new Uint8Array([0x0d, 0x0a]);

function isKeepalive(bytes: Uint8Array): boolean {
  if (bytes.length !== 2 && bytes.length !== 4) return false;
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}

