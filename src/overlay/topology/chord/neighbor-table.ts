import type { Id } from '../../../wire/id.js';
import type { Contact } from '../../../wire/messages/contact.js';
import { betweenOpen, clockwise } from './ring.js';

/*
 * CHORD-RELOAD's neighbour table (RFC 6940 s10.3): the closest peers clockwise (successors)
 * and counter-clockwise (predecessors), each list sorted nearest first and capped.
 */
export class NeighborTable {
  successors: Contact[] = [];
  predecessors: Contact[] = [];

  constructor(
    readonly self: Id,
    private readonly size: number,
  ) {}

  get successor(): Contact | undefined {
    return this.successors[0];
  }

  get predecessor(): Contact | undefined {
    return this.predecessors[0];
  }

  /** Takes any contacts that are closer than what either list holds. Returns true if a list changed. */
  consider(contacts: readonly Contact[]): boolean {
    const s = this.closestSuccessors([...this.successors, ...contacts]);
    const p = this.closestPredecessors([...this.predecessors, ...contacts]);
    const changed = !sameIds(s, this.successors) || !sameIds(p, this.predecessors);
    this.successors = s;
    this.predecessors = p;
    return changed;
  }

  /**
   * Our first successor's view is authoritative for what lies beyond it: the successor list
   * becomes it and its successors (Chord's successor-list rule), plus anyone it knows of
   * between us.
   */
  adoptSuccessorView(from: Contact, theirSuccessors: readonly Contact[], theirPredecessors: readonly Contact[]): void {
    const between = theirPredecessors.filter((c) => betweenOpen(c.id, this.self, from.id));
    this.successors = this.closestSuccessors([from, ...theirSuccessors, ...between]);
    this.predecessors = this.closestPredecessors([...this.predecessors, from, ...theirSuccessors, ...theirPredecessors]);
  }

  /** The mirror image for our first predecessor. */
  adoptPredecessorView(from: Contact, theirSuccessors: readonly Contact[], theirPredecessors: readonly Contact[]): void {
    const between = theirSuccessors.filter((c) => betweenOpen(c.id, from.id, this.self));
    this.predecessors = this.closestPredecessors([from, ...theirPredecessors, ...between]);
    this.successors = this.closestSuccessors([...this.successors, from, ...theirSuccessors, ...theirPredecessors]);
  }

  remove(id: Id): boolean {
    const before = this.successors.length + this.predecessors.length;
    this.successors = this.successors.filter((c) => c.id !== id);
    this.predecessors = this.predecessors.filter((c) => c.id !== id);
    return this.successors.length + this.predecessors.length !== before;
  }

  all(): Contact[] {
    return unique([...this.successors, ...this.predecessors]);
  }

  private closestSuccessors(contacts: readonly Contact[]): Contact[] {
    return unique(contacts.filter((c) => c.id !== this.self))
      .sort((a, b) => compare(clockwise(this.self, a.id), clockwise(this.self, b.id)))
      .slice(0, this.size);
  }

  private closestPredecessors(contacts: readonly Contact[]): Contact[] {
    return unique(contacts.filter((c) => c.id !== this.self))
      .sort((a, b) => compare(clockwise(a.id, this.self), clockwise(b.id, this.self)))
      .slice(0, this.size);
  }
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** First occurrence of each Node-ID wins (the freshest contact comes first). */
export function unique(contacts: readonly Contact[]): Contact[] {
  const seen = new Set<Id>();
  const out: Contact[] = [];
  for (const c of contacts) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    out.push(c);
  }
  return out;
}

function sameIds(a: readonly Contact[], b: readonly Contact[]): boolean {
  return a.length === b.length && a.every((c, i) => c.id === b[i].id);
}
