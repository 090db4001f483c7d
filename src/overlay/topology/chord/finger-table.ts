import type { Id } from '../../../wire/id.js';
import type { Contact } from '../../../wire/messages/contact.js';
import { betweenRightClosed, fingerTarget } from './ring.js';

/*
 * The finger table (RFC 6940 s10.3): finger k is the peer responsible for self + 2^(128-k).
 * 32 fingers suffice for rings of up to 2^32 peers; fingers whose target falls inside the
 * successor list need no lookups of their own.
 */
export const FINGER_COUNT = 32;

export class FingerTable {
  private readonly fingers = new Map<number, Contact>();
  private cursor = 0;

  constructor(readonly self: Id) {}

  set(k: number, contact: Contact): void {
    if (contact.id === this.self) this.fingers.delete(k);
    else this.fingers.set(k, contact);
  }

  remove(id: Id): void {
    for (const [k, c] of this.fingers) if (c.id === id) this.fingers.delete(k);
  }

  contacts(): Contact[] {
    const seen = new Set<Id>();
    const out: Contact[] = [];
    for (const c of this.fingers.values()) {
      if (!seen.has(c.id)) {
        seen.add(c.id);
        out.push(c);
      }
    }
    return out;
  }

  entries(): [number, Contact][] {
    return [...this.fingers].sort((a, b) => a[0] - b[0]);
  }

  /** Every finger the successor list does not answer, once each (for a newly joined peer). */
  uncovered(successors: readonly Contact[]): { k: number; target: Id }[] {
    const last = successors[successors.length - 1];
    const out: { k: number; target: Id }[] = [];
    for (let k = 1; k <= FINGER_COUNT; k++) {
      const target = fingerTarget(this.self, k);
      if (!last || !betweenRightClosed(target, this.self, last.id)) out.push({ k, target });
    }
    return out;
  }

  /**
   * The next finger that needs a lookup, round robin, skipping those the successor list already
   * answers (they are set from it directly). Returns undefined when every finger is covered.
   */
  nextToRefresh(successors: readonly Contact[]): { k: number; target: Id } | undefined {
    const last = successors[successors.length - 1];
    for (let tries = 0; tries < FINGER_COUNT; tries++) {
      const k = (this.cursor++ % FINGER_COUNT) + 1;
      const target = fingerTarget(this.self, k);
      if (last && betweenRightClosed(target, this.self, last.id)) {
        const responsible = successors.find((c) => betweenRightClosed(target, this.self, c.id));
        if (responsible) this.set(k, responsible);
        continue;
      }
      return { k, target };
    }
    return undefined;
  }
}
