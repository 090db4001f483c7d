import type { Id } from '../wire/id.js';

/*
 * The simulator's view from outside the overlay: every live node, sorted on the ring, so that
 * the true successor of any ID is one binary search away. Used to judge the overlay, never by it.
 */
export class RingOracle<Node> {
  private sorted: Id[] = [];
  private readonly nodes = new Map<Id, Node>();
  private dirty = false;

  add(id: Id, node: Node): void {
    this.nodes.set(id, node);
    this.dirty = true;
  }

  remove(id: Id): void {
    this.nodes.delete(id);
    this.dirty = true;
  }

  get size(): number {
    return this.nodes.size;
  }

  liveNodes(): Node[] {
    return [...this.nodes.values()];
  }

  /** The first live node at or clockwise after `id`. */
  successorOf(id: Id): Id | undefined {
    const ids = this.ids();
    if (ids.length === 0) return undefined;
    const wrapped = id % (1n << 128n);
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ids[mid] < wrapped) lo = mid + 1;
      else hi = mid;
    }
    return ids[lo % ids.length];
  }

  private ids(): Id[] {
    if (this.dirty) {
      this.sorted = [...this.nodes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.dirty = false;
    }
    return this.sorted;
  }
}
