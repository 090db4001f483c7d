import { P2psipError } from '../../../runtime/errors.js';

/*
 * The anchor's media ports (issue 16, `--media-ports LOW-HIGH`): RTP on an even port, its RTCP
 * on the odd one above (RFC 3550 s11). Pairs are handed out round the range, so a port just
 * freed is the last to be reused (late packets of an ended call do not land in a new one).
 */
export class MediaPortsExhausted extends P2psipError {
  override readonly name = 'MediaPortsExhausted';
}

export class MediaPortPool {
  private readonly inUse = new Set<number>();
  private next: number;
  private readonly low: number;
  private readonly high: number;

  constructor(low: number, high: number) {
    this.low = low % 2 === 0 ? low : low + 1;
    this.high = high % 2 === 1 ? high : high - 1;
    if (this.low < 1024 || this.high > 65535 || this.high - this.low < 1) throw new P2psipError(`media ports ${low}-${high}: give a range of at least one even/odd pair within 1024-65535`);
    this.next = this.low;
  }

  /** How many RTP/RTCP pairs the range holds. */
  get capacity(): number {
    return (this.high - this.low + 1) / 2;
  }

  get range(): string {
    return `${this.low}-${this.high}`;
  }

  get pairsInUse(): number {
    return this.inUse.size;
  }

  /** An even RTP port whose odd neighbour is free too; `taken` says when the system refuses one (bound elsewhere). */
  allocate(taken: (rtpPort: number) => boolean = () => false): number {
    for (let tried = 0; tried < this.capacity; tried++) {
      const port = this.next;
      this.next = port + 2 > this.high ? this.low : port + 2;
      if (this.inUse.has(port) || taken(port)) continue;
      this.inUse.add(port);
      return port;
    }
    throw new MediaPortsExhausted(`all ${this.capacity} media port pairs are in use`);
  }

  release(rtpPort: number): void {
    this.inUse.delete(rtpPort);
  }
}
