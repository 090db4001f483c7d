import { appended, without } from '../runtime/exact-array.js';
import type { HeldValue } from './held-value.js';

/*
 * One kind's entries under one Resource-ID, by entry key: the part of Map that the store uses,
 * over an array of exactly its length. Most slots hold one value (a relay, a phone's
 * registration) and none holds more than its kind's max-count (64 at most here), so a scan is
 * cheap, while a Map would cost about 230 bytes per slot even when it holds one entry.
 */
export class EntryList {
  private items: readonly HeldValue[] = [];

  get size(): number {
    return this.items.length;
  }

  get(keyText: string): HeldValue | undefined {
    return this.items.find((v) => v.keyText === keyText);
  }

  set(value: HeldValue): void {
    const at = this.items.findIndex((v) => v.keyText === value.keyText);
    this.items = at < 0 ? appended(this.items, value) : this.items.map((v, i) => (i === at ? value : v));
  }

  delete(keyText: string): HeldValue | undefined {
    const old = this.get(keyText);
    if (old) this.items = without(this.items, old);
    return old;
  }

  values(): readonly HeldValue[] {
    return this.items;
  }
}
