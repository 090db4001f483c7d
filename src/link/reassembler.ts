import type { Clock } from '../runtime/clock.js';
import { type OverlayMessage } from '../wire/message.js';

/*
 * Puts fragments back together (RFC 6940 s6.7) with bounded memory: a cap on messages in
 * progress and on bytes held, and a deadline per message, so a peer that sends first fragments
 * and never the rest cannot exhaust a router's RAM.
 */
export interface ReassemblyLimits {
  readonly maxInProgress: number;
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = { maxInProgress: 64, maxBytes: 1 << 20, timeoutMs: 15_000 };
/**
 * Every fragment but a message's last carries at least this much (fragmenter.ts never cuts
 * smaller), so a message is held in at most total/64 + 1 pieces: empty or tiny ones at distinct
 * offsets would each cost a map entry for 15 s while `total` alone was counted (fuzz review F4).
 */
const MIN_FRAGMENT_BYTES = 64;

interface Pending {
  readonly total: number;
  readonly startedAt: number;
  readonly pieces: Map<number, Uint8Array>;
  received: number;
  first: OverlayMessage;
}

export class Reassembler {
  private readonly pending = new Map<string, Pending>();
  private bytesHeld = 0;
  dropped = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
  ) {}

  /** Returns the whole message once its last fragment arrives; undefined until then. */
  accept(sourceKey: string, piece: OverlayMessage): OverlayMessage | undefined {
    const { fragment, transactionId, code } = piece.header;
    if (fragment.offset === 0 && fragment.total === piece.payload.length) return piece;
    this.expire();
    const length = piece.payload.length;
    if (length === 0 || (length < MIN_FRAGMENT_BYTES && fragment.offset + length < fragment.total)) {
      this.dropped++;
      return undefined;
    }
    const key = `${sourceKey}/${Buffer.from(transactionId).toString('hex')}/${code}`;
    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= this.limits.maxInProgress || this.bytesHeld + fragment.total > this.limits.maxBytes) {
        this.dropped++;
        return undefined;
      }
      entry = { total: fragment.total, startedAt: this.clock.now(), pieces: new Map(), received: 0, first: piece };
      this.pending.set(key, entry);
      this.bytesHeld += entry.total;
    }
    if (entry.total !== fragment.total || entry.pieces.has(fragment.offset)) return undefined;
    if (entry.received + length > entry.total) {
      // More bytes than the message has: overlapping pieces, a malformed sender.
      this.remove(key, entry);
      this.dropped++;
      return undefined;
    }
    // A copy: a view would keep the whole datagram it was decoded from.
    entry.pieces.set(fragment.offset, piece.payload.slice());
    entry.received += length;
    if (fragment.offset === 0) entry.first = piece;
    if (entry.received < entry.total) return undefined;
    this.remove(key, entry);
    return this.join(entry);
  }

  inProgress(): number {
    return this.pending.size;
  }

  private join(entry: Pending): OverlayMessage | undefined {
    const whole = new Uint8Array(entry.total);
    let covered = 0;
    for (const [offset, bytes] of [...entry.pieces].sort((a, b) => a[0] - b[0])) {
      if (offset !== covered) return undefined; // overlapping or gapped pieces: a malformed sender
      whole.set(bytes, offset);
      covered += bytes.length;
    }
    return { header: { ...entry.first.header, fragment: { offset: 0, total: entry.total } }, payload: whole };
  }

  private expire(): void {
    const cutoff = this.clock.now() - this.limits.timeoutMs;
    for (const [key, entry] of this.pending) {
      if (entry.startedAt < cutoff) {
        this.remove(key, entry);
        this.dropped++;
      }
    }
  }

  private remove(key: string, entry: Pending): void {
    this.pending.delete(key);
    this.bytesHeld -= entry.total;
  }
}
