import type { Link } from '../link/link.js';
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { Address } from '../wire/address.js';
import { seal } from './stun/integrity.js';
import { Attr, decodeStun, encodeStun, mappedAddress, StunClass, StunError, StunMethod } from './stun/message.js';

/*
 * How long the NAT keeps an idle binding (RFC 5780 s4.6), so that keepalives come often
 * enough and no more. Socket X makes a binding with a Binding request to a public peer, stays
 * silent for T seconds, then socket Y asks the same peer to answer to X's mapped port
 * (RESPONSE-PORT). X hears the answer only if its binding outlived T. T doubles from a few
 * seconds until an answer is missed; the last T that worked is a lower bound on the lifetime.
 */
export const LIFETIME_STEPS_SECONDS = [4, 8, 16, 32, 64, 128];
const ANSWER_WAIT_MS = 1_500;

export interface BindingLifetime {
  /** The longest idle time a binding survived (seconds); 0: not even the first step. */
  readonly survivedSeconds: number;
  /** The first idle time it did not survive, if any step failed. */
  readonly expiredBySeconds: number | null;
}

export class BindingLifetimeProbe {
  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly openSocket: (bind: Address) => Promise<Link>,
    private readonly host: string,
    private readonly server: Address,
    private readonly steps: readonly number[] = LIFETIME_STEPS_SECONDS,
  ) {}

  async measure(): Promise<BindingLifetime | undefined> {
    let survived = 0;
    for (const seconds of this.steps) {
      let alive = await this.survives(seconds);
      // A step missed once may be a lost datagram, not an expired binding: it must miss twice.
      if (alive === false) alive = await this.survives(seconds);
      if (alive === undefined) return undefined; // the server did not answer at all
      if (!alive) return { survivedSeconds: survived, expiredBySeconds: seconds };
      survived = seconds;
    }
    return { survivedSeconds: survived, expiredBySeconds: null };
  }

  /** Whether a binding left idle for `seconds` still lets the server's answer in. */
  private async survives(seconds: number): Promise<boolean | undefined> {
    const x = await this.openSocket({ host: this.host, port: 0 });
    let y: Link | undefined;
    try {
      const mapped = await this.ask(x, x, undefined);
      if (!mapped) return undefined;
      await this.sleep(seconds * 1000);
      y = await this.openSocket({ host: this.host, port: 0 });
      return (await this.ask(y, x, mapped.port)) !== undefined;
    } finally {
      await x.close();
      await y?.close();
    }
  }

  /** Sends a Binding request from `from` (to be answered at `responsePort`) and waits on `on`. */
  private ask(from: Link, on: Link, responsePort: number | undefined): Promise<Address | undefined> {
    const transactionId = this.random.bytes(12);
    const port = new Uint8Array(4);
    if (responsePort !== undefined) new DataView(port.buffer).setUint16(0, responsePort);
    const request = seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, responsePort === undefined ? [] : [{ type: Attr.ResponsePort, value: port }]));
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(ANSWER_WAIT_MS, () => resolve(undefined));
      on.onDatagram((_, datagram) => {
        try {
          const answer = decodeStun(datagram);
          if (answer.klass !== StunClass.Success || Buffer.compare(Buffer.from(answer.transactionId), Buffer.from(transactionId)) !== 0) return;
          this.clock.clearTimer(timer);
          resolve(mappedAddress(answer));
        } catch (error) {
          if (!(error instanceof StunError)) throw error;
        }
      });
      for (const delay of [0, 300, 700]) this.clock.setTimer(delay, () => from.send(this.server, request));
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(ms, resolve));
  }
}

/**
 * Keepalives at 80% of what a binding was seen to survive, at least every 2 s, and never less
 * often than the default: a link's keepalives hold the far end's NAT pinhole open too, and that
 * NAT is not ours to measure (many close a UDP pinhole after 30 s).
 */
export function keepaliveIntervalFor(lifetime: BindingLifetime, defaultMs: number): number {
  if (lifetime.expiredBySeconds === null) return defaultMs;
  return Math.max(2_000, Math.min(defaultMs, lifetime.survivedSeconds * 800));
}
