import type { Params } from '../message/params.js';
import { type SipFlow, sameFlow } from '../transport/sip-transport.js';

/*
 * The location service (RFC 3261 s10): for each address-of-record, the contacts its phones
 * registered, each with its expiry, the Call-ID and CSeq that last set it (s10.3 step 7 orders
 * updates by them) and the flow it came over, which is how the phone is reached behind a NAT.
 */
export interface Binding {
  readonly contact: string;
  readonly expiresAt: number;
  readonly callId: string;
  readonly cseq: number;
  readonly flow: SipFlow;
  readonly q: number | undefined;
  /** RFC 5626 s4.1's +sip.instance: the same phone, whatever contact it registers next. */
  readonly instance?: string;
  /** The Contact's header parameters as registered (expires is recomputed when listed). */
  readonly params?: Params;
}

export type BindingsListener = (aor: string, bindings: readonly Binding[]) => void;

export class LocationService {
  private readonly byAor = new Map<string, Binding[]>();
  private readonly listeners: BindingsListener[] = [];

  constructor(private readonly now: () => number) {}

  onChange(listener: BindingsListener): void {
    this.listeners.push(listener);
  }

  /** Unexpired bindings of an AOR. */
  bindings(aor: string): Binding[] {
    const now = this.now();
    return (this.byAor.get(aor) ?? []).filter((b) => b.expiresAt > now);
  }

  /** Replaces an AOR's bindings (the registrar computed them) and tells listeners. */
  set(aor: string, bindings: readonly Binding[]): void {
    if (bindings.length === 0) this.byAor.delete(aor);
    else this.byAor.set(aor, [...bindings]);
    for (const listener of this.listeners) listener(aor, bindings);
  }

  /** Drops expired bindings (s10.2.1.1: a binding lives until its expiry). */
  sweep(): void {
    const now = this.now();
    for (const [aor, list] of [...this.byAor]) {
      const live = list.filter((b) => b.expiresAt > now);
      if (live.length !== list.length) this.set(aor, live);
    }
  }

  /** Drops every binding reached over one TCP connection (it failed when used: RFC 5626 s5.3, no ghost binding). */
  removeConnection(connectionId: number): number {
    let removed = 0;
    for (const [aor, list] of [...this.byAor]) {
      const kept = list.filter((b) => b.flow.transport !== 'TCP' || b.flow.connectionId !== connectionId);
      removed += list.length - kept.length;
      if (kept.length !== list.length) this.set(aor, kept);
    }
    return removed;
  }

  /**
   * The bindings reached over `from` that `which` picks are reached over `to` from now on (a new
   * connection to a phone whose own closed: only the Contacts that listen where it went; an ATA's
   * other lines, registered over the same connection, listen elsewhere).
   */
  moveFlow(from: SipFlow, to: SipFlow, which: (binding: Binding) => boolean): void {
    const moves = (b: Binding): boolean => sameFlow(b.flow, from) && which(b);
    for (const [aor, list] of [...this.byAor]) {
      if (list.some(moves)) this.set(aor, list.map((b) => (moves(b) ? { ...b, flow: to } : b)));
    }
  }

  /** Whether a message came over a flow some phone registered from (the same TCP connection, or UDP source address). */
  hasFlow(flow: SipFlow): boolean {
    return this.flows().some((f) => sameFlow(f, flow));
  }

  /** Every live binding's flow (to keep registered TCP connections open). */
  flows(): SipFlow[] {
    const now = this.now();
    return [...this.byAor.values()].flat().filter((b) => b.expiresAt > now).map((b) => b.flow);
  }

  aors(): string[] {
    return [...this.byAor.keys()];
  }

  get size(): number {
    let n = 0;
    for (const list of this.byAor.values()) n += list.length;
    return n;
  }
}
