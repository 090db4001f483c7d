import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import { isIP } from 'node:net';
import type { Logger } from '../runtime/log.js';
import { type Random, randomInt } from '../runtime/random.js';
import type { Address } from '../wire/address.js';
import type { Link } from './link.js';

/** A Link over a real UDP socket, through dgram-as-promised. */
export class UdpLink implements Link {
  /** Datagrams whose handling threw: counted and dropped, never out of the socket's callback. */
  faults = 0;
  private handler: (from: Address, datagram: Uint8Array) => void = () => {};
  private closed = false;
  private lastSend: Promise<void> | undefined;

  private constructor(
    private readonly socket: SocketAsPromised,
    readonly localAddress: Address,
    private readonly log: Logger,
  ) {}

  static async open(bind: Address, log: Logger): Promise<UdpLink> {
    const type = isIP(bind.host) === 6 ? 'udp6' : 'udp4';
    let link: UdpLink | undefined;
    const socket = DgramAsPromised.createSocket({ type, reuseAddr: false }, (msg, rinfo) => link?.receive({ host: rinfo.address, port: rinfo.port }, msg));
    const bound = await socket.bind(bind.port, bind.host).catch(async (error: unknown) => {
      await socket.close().catch(() => undefined); // a failed bind leaves the handle open
      throw error;
    });
    link = new UdpLink(socket, { host: bound.address, port: bound.port }, log);
    // A datagram to a vanished host raises ICMP errors on some systems; they are not fatal.
    socket.socket.on('error', (error) => log.debug('socket-error', { error }));
    return link;
  }

  send(to: Address, datagram: Uint8Array): void {
    if (this.closed) return;
    const sent = this.socket.send(datagram, to.port, to.host).then(
      () => undefined,
      (error: Error) => this.log.debug('send-failed', { to: `${to.host}:${to.port}`, error }),
    );
    this.lastSend = sent;
  }

  /**
   * A socket on a free port of `range` (any free port without one): tried from a random port
   * onwards, so two peers on one host rarely race for the same one.
   */
  static async openInRange(bind: Address, range: { low: number; high: number } | undefined, random: Random, log: Logger): Promise<UdpLink> {
    if (!range) return UdpLink.open(bind, log);
    const size = range.high - range.low + 1;
    const start = randomInt(random, size);
    for (let i = 0; i < size; i++) {
      try {
        return await UdpLink.open({ host: bind.host, port: range.low + ((start + i) % size) }, log);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      }
    }
    throw new Error(`no free UDP port in ${range.low}-${range.high}`);
  }

  /** An exception here would end the process (nothing above the socket catches it): the last guard. */
  private receive(from: Address, datagram: Uint8Array): void {
    try {
      this.handler(from, datagram);
    } catch (error) {
      this.faults++;
      this.log.warn('datagram-fault', { from: `${from.host}:${from.port}`, error });
    }
  }

  onDatagram(handler: (from: Address, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Node sends on a later tick (after resolving the address): a socket closed at once would drop
    // what we said last, such as the Refresh that gives a relay allocation back. Sends go in order.
    await this.lastSend;
    await this.socket.close();
  }
}
