import { createHash } from 'node:crypto';
import { OverlayError } from '../overlay/overlay-error.js';
import type { Id } from '../wire/id.js';
import { ErrorCode } from '../wire/message-codes.js';
import type { FetchKindResponse, Selector } from '../wire/messages/fetch.js';
import type { StoredMeta } from '../wire/messages/stat.js';
import type { StoreKindData } from '../wire/messages/store.js';
import { entryKeyText, type StoredData } from '../wire/messages/stored-data.js';
import type { StorageChange } from './backends/backend.js';
import type { KindDefinition, KindRegistry } from './kind.js';

/*
 * What this peer stores, indexed in memory: Resource-ID -> kind -> generation and entries.
 * Enforces RELOAD's storage rules (RFC 6940 s7.4.1.2): known kinds, the kind's data model,
 * generation counters, newer-storage-time-wins, sizes, counts, lifetimes, and this peer's quotas.
 * A Store is all or nothing: every value is checked before any is kept.
 */
export interface StorageLimits {
  /** Bytes of values one Resource-ID may hold here. */
  readonly maxBytesPerResource: number;
  /** Bytes of values this peer holds in all. */
  readonly maxBytesTotal: number;
}

export const DEFAULT_STORAGE_LIMITS: StorageLimits = { maxBytesPerResource: 256 * 1024, maxBytesTotal: 32 * 1024 * 1024 };

interface KindSlot {
  generation: bigint;
  readonly entries: Map<string, StoredData>;
}

export class ResourceStore {
  private readonly resources = new Map<Id, Map<number, KindSlot>>();
  private bytesHeld = 0;
  private entryCount = 0;

  constructor(
    private readonly kinds: KindRegistry,
    private readonly limits: StorageLimits = DEFAULT_STORAGE_LIMITS,
  ) {}

  kind(id: number): KindDefinition {
    const kind = this.kinds.get(id);
    if (!kind) throw new OverlayError(ErrorCode.UnknownKind, `unknown kind ${id}`);
    return kind;
  }

  /**
   * Checks a Store of one kind's values against the rules; returns the changes to make durable
   * (not yet applied). `replica`: a copy from the responsible peer, which carries its generation.
   */
  prepare(resource: Id, data: StoreKindData, replica: boolean, nowMs: number): StorageChange[] {
    const kind = this.kind(data.kind);
    const slot = this.resources.get(resource)?.get(data.kind);
    const current = slot?.generation ?? 0n;
    if (!replica && data.generation !== 0n && data.generation !== current) {
      throw new OverlayError(ErrorCode.GenerationCounterTooLow, `generation ${data.generation} is stale; current is ${current}`);
    }
    const generation = replica ? data.generation : current + 1n;
    const next = new Map(slot?.entries ?? []);
    let addedBytes = 0;
    for (const value of data.values) {
      checkModel(kind, value);
      if (value.entry.value.length > kind.maxSize) {
        throw new OverlayError(ErrorCode.DataTooLarge, `value of ${value.entry.value.length} bytes exceeds ${kind.name}'s ${kind.maxSize}`);
      }
      if (isExpired(value, nowMs)) throw new OverlayError(ErrorCode.DataTooOld, 'value has already expired');
      const key = entryKeyText(value.entry.key);
      const existing = next.get(key);
      if (existing && existing.storageTime > value.storageTime) {
        throw new OverlayError(ErrorCode.DataTooOld, 'a newer value is already stored');
      }
      addedBytes += value.entry.value.length - (existing?.entry.value.length ?? 0);
      next.set(key, value);
    }
    if (next.size > kind.maxCount) throw new OverlayError(ErrorCode.DataTooLarge, `${kind.name} holds at most ${kind.maxCount} entries`);
    if (this.resourceBytes(resource) + addedBytes > this.limits.maxBytesPerResource) {
      throw new OverlayError(ErrorCode.DataTooLarge, 'quota: this Resource-ID is full here');
    }
    if (this.bytesHeld + addedBytes > this.limits.maxBytesTotal) throw new OverlayError(ErrorCode.DataTooLarge, 'quota: this peer is full');
    return data.values.map((value) => ({ op: 'put', resource, kind: data.kind, generation, data: value }));
  }

  /** Applies durable changes (after the backend acknowledged them, or when replaying it). */
  apply(change: StorageChange): void {
    let kinds = this.resources.get(change.resource);
    if (change.op === 'remove') {
      const slot = kinds?.get(change.kind);
      const old = slot?.entries.get(change.key);
      if (!slot || !old) return;
      slot.entries.delete(change.key);
      this.bytesHeld -= old.entry.value.length;
      this.entryCount--;
      if (slot.entries.size === 0) kinds!.delete(change.kind);
      if (kinds!.size === 0) this.resources.delete(change.resource);
      return;
    }
    if (!kinds) this.resources.set(change.resource, (kinds = new Map()));
    let slot = kinds.get(change.kind);
    if (!slot) kinds.set(change.kind, (slot = { generation: 0n, entries: new Map() }));
    const key = entryKeyText(change.data.entry.key);
    const old = slot.entries.get(key);
    if (old && old.storageTime > change.data.storageTime) return;
    this.bytesHeld += change.data.entry.value.length - (old?.entry.value.length ?? 0);
    if (!old) this.entryCount++;
    slot.entries.set(key, change.data);
    if (change.generation > slot.generation) slot.generation = change.generation;
  }

  generation(resource: Id, kind: number): bigint {
    return this.resources.get(resource)?.get(kind)?.generation ?? 0n;
  }

  fetch(resource: Id, kind: number, selector: Selector, nowMs: number): FetchKindResponse {
    this.kind(kind);
    const slot = this.resources.get(resource)?.get(kind);
    const values = slot ? [...slot.entries.values()].filter((v) => !isExpired(v, nowMs) && selects(selector, v)) : [];
    return { kind, generation: slot?.generation ?? 0n, values };
  }

  stat(resource: Id, kind: number, selector: Selector, nowMs: number): { kind: number; generation: bigint; values: StoredMeta[] } {
    const { generation, values } = this.fetch(resource, kind, selector, nowMs);
    return {
      kind,
      generation,
      values: values.map((v) => ({
        storageTime: v.storageTime,
        lifetime: v.lifetime,
        key: v.entry.key,
        exists: v.entry.exists,
        length: v.entry.value.length,
        sha256: new Uint8Array(createHash('sha256').update(v.entry.value).digest()),
      })),
    };
  }

  /** RFC 6940 s7.4.4: the closest Resource-ID at or after `from` holding values of `kind`. */
  find(from: Id, kind: number): Id | null {
    let best: Id | null = null;
    for (const [resource, kinds] of this.resources) {
      if (!kinds.has(kind) || resource < from) continue;
      if (best === null || resource < best) best = resource;
    }
    return best;
  }

  /** Entries past their lifetime, as removals to make durable. */
  expired(nowMs: number): StorageChange[] {
    const out: StorageChange[] = [];
    for (const [resource, kinds] of this.resources) {
      for (const [kind, slot] of kinds) {
        for (const [key, value] of slot.entries) if (isExpired(value, nowMs)) out.push({ op: 'remove', resource, kind, key });
      }
    }
    return out;
  }

  /** Everything held, as the changes that would rebuild it (for compaction and replication). */
  changesFor(resource?: Id): StorageChange[] {
    const out: StorageChange[] = [];
    const pick = resource === undefined ? this.resources : new Map([[resource, this.resources.get(resource) ?? new Map<number, KindSlot>()]]);
    for (const [r, kinds] of pick) {
      for (const [kind, slot] of kinds) for (const data of slot.entries.values()) out.push({ op: 'put', resource: r, kind, generation: slot.generation, data });
    }
    return out;
  }

  resourceIds(): Id[] {
    return [...this.resources.keys()];
  }

  /** Forgets a Resource-ID entirely (handed over to its new responsible peer). */
  drop(resource: Id): StorageChange[] {
    const removals: StorageChange[] = [];
    for (const [kind, slot] of this.resources.get(resource) ?? []) {
      for (const key of slot.entries.keys()) removals.push({ op: 'remove', resource, kind, key });
    }
    return removals;
  }

  get size(): { resources: number; entries: number; bytes: number } {
    return { resources: this.resources.size, entries: this.entryCount, bytes: this.bytesHeld };
  }

  private resourceBytes(resource: Id): number {
    let total = 0;
    for (const slot of this.resources.get(resource)?.values() ?? []) for (const v of slot.entries.values()) total += v.entry.value.length;
    return total;
  }
}

export function isExpired(value: StoredData, nowMs: number): boolean {
  return Number(value.storageTime) + value.lifetime * 1000 < nowMs;
}

function checkModel(kind: KindDefinition, value: StoredData): void {
  const key = value.entry.key;
  const ok = kind.model === 'single' ? key === null : kind.model === 'array' ? typeof key === 'number' : key instanceof Uint8Array;
  if (!ok) throw new OverlayError(ErrorCode.InvalidMessage, `${kind.name} is a ${kind.model} kind; the entry key does not fit`);
}

function selects(selector: Selector, value: StoredData): boolean {
  if ('all' in selector) return true;
  const key = value.entry.key;
  if ('ranges' in selector) return typeof key === 'number' && selector.ranges.some(([a, b]) => key >= a && key <= b);
  if (selector.keys.length === 0) return true;
  return key instanceof Uint8Array && selector.keys.some((k) => Buffer.compare(k, key) === 0);
}
