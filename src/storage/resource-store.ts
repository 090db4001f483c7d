import { createHash } from 'node:crypto';
import { OverlayError } from '../overlay/overlay-error.js';
import { appended, without } from '../runtime/exact-array.js';
import type { Id } from '../wire/id.js';
import { ErrorCode } from '../wire/message-codes.js';
import { MAX_UINT64 } from '../wire/schema.js';
import type { FetchKindResponse, Selector } from '../wire/messages/fetch.js';
import type { StoredMeta } from '../wire/messages/stat.js';
import type { StoreKindData } from '../wire/messages/store.js';
import { type EntryKey, entryKeyText, type StoredData } from '../wire/messages/stored-data.js';
import type { StorageChange } from './backends/backend.js';
import { EntryList } from './entry-list.js';
import { HeldValue, isExpired } from './held-value.js';
import type { KindDefinition, KindRegistry } from './kind.js';

/*
 * What this peer stores, indexed in memory: Resource-ID -> kind -> generation and entries, each
 * entry packed (held-value.ts) so that thousands fit on a router.
 * Enforces RELOAD's storage rules (RFC 6940 s7.4.1.2): known kinds, the kind's data model,
 * generation counters, newer-storage-time-wins, sizes, counts, lifetimes, and this peer's quotas.
 * A Store is all or nothing: every value is checked before any is kept.
 */
export interface StorageLimits {
  /** Bytes of values one Resource-ID may hold here. */
  readonly maxBytesPerResource: number;
  /** Bytes of values this peer holds in all. */
  readonly maxBytesTotal: number;
  /**
   * Entries this peer holds in all: what bounds its memory (bench/footprint.ts measures what
   * each costs); absent, only the byte quotas apply.
   */
  readonly maxEntries?: number;
}

export const DEFAULT_STORAGE_LIMITS: StorageLimits = { maxBytesPerResource: 256 * 1024, maxBytesTotal: 32 * 1024 * 1024 };
/**
 * How far ahead of this peer's clock a value's storage_time may be: a tolerance, twice the skew
 * sealed hellos allow between two linked peers, since a writer and a holder that never linked
 * (a routed Store, a copy of a copy) may each be off the other way (regression reviews F1). A
 * copy dated further ahead is passed over: one replica fewer until the writer's next refresh.
 * A value dated years ahead would refuse every later Store to its entry as older, for good, and
 * never expire (fuzz review F7).
 */
const MAX_AHEAD_MS = 20 * 60_000;

interface KindSlot {
  readonly kind: number;
  generation: bigint;
  readonly entries: EntryList;
}

interface ResourceEntry {
  /** A few kinds at most per Resource-ID: a short list costs less than a Map. */
  slots: readonly KindSlot[];
  /** Bytes of values held for this Resource-ID (kept, not recounted: quotas are checked per Store). */
  bytes: number;
}

function slotOf(resource: ResourceEntry | undefined, kind: number): KindSlot | undefined {
  return resource?.slots.find((s) => s.kind === kind);
}

export class ResourceStore {
  /** Values in copies from neighbours passed over as dated too far ahead: a skewed clock somewhere costs a replica. */
  copiesDatedAhead = 0;
  private readonly resources = new Map<Id, ResourceEntry>();
  /** One copy of each signer's certificate, however many values it signed, kept while any value it signed is. */
  private readonly certificates = new Map<string, { readonly bytes: Uint8Array; uses: number }>();
  private bytesHeld = 0;
  private entryCount = 0;
  /**
   * What Stores that passed the checks but are not durable yet will add: counted against every
   * quota as if held, or a burst of Stores, each checked before any is applied, would all pass.
   */
  private readonly pending = { bytes: 0, entries: 0, bytesOf: new Map<Id, number>(), entriesOf: new Map<string, number>() };

  constructor(
    private readonly kinds: KindRegistry,
    readonly limits: StorageLimits = DEFAULT_STORAGE_LIMITS,
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
    const slot = slotOf(this.resources.get(resource), data.kind);
    const current = slot?.generation ?? 0n;
    if (!replica && data.generation !== 0n && data.generation !== current) {
      throw new OverlayError(ErrorCode.GenerationCounterTooLow, `generation ${data.generation} is stale; current is ${current}`);
    }
    // Saturates: a copy may carry the largest generation there is, and one more would fit no field.
    const generation = replica ? data.generation : current < MAX_UINT64 ? current + 1n : current;
    // The entries as they would be after this Store: the stored ones plus this batch's.
    const batch = new Map<string, { storageTime: bigint; valueLength: number }>();
    const entryAt = (key: string) => batch.get(key) ?? slot?.entries.get(key);
    let addedBytes = 0;
    let addedEntries = 0;
    const kept: StorageChange[] = [];
    for (const value of data.values) {
      checkModel(kind, value);
      if (value.entry.value.length > kind.maxSize) {
        throw new OverlayError(ErrorCode.DataTooLarge, `value of ${value.entry.value.length} bytes exceeds ${kind.name}'s ${kind.maxSize}`);
      }
      const key = entryKeyText(value.entry.key);
      const existing = entryAt(key);
      const ahead = value.storageTime > BigInt(Math.floor(nowMs) + MAX_AHEAD_MS);
      const stale = isExpired(value, nowMs) || (existing !== undefined && existing.storageTime > value.storageTime);
      if (ahead && replica) {
        this.copiesDatedAhead++;
        continue;
      }
      if (ahead) {
        const minutes = Number((value.storageTime - BigInt(Math.floor(nowMs))) / 60_000n);
        throw new OverlayError(ErrorCode.InvalidMessage, `storage_time is ${minutes} minutes ahead of this peer's clock (at most ${MAX_AHEAD_MS / 60_000}): the writer's clock or this peer's is wrong`);
      }
      // A copy carries everything its sender holds: what we hold newer (or what expired on the
      // way) is passed over, not a reason to refuse the rest, which would be sent again and again.
      if (stale && replica) continue;
      if (isExpired(value, nowMs)) throw new OverlayError(ErrorCode.DataTooOld, 'value has already expired');
      if (stale) throw new OverlayError(ErrorCode.DataTooOld, 'a newer value is already stored');
      const bytes = value.entry.value.length - (existing?.valueLength ?? 0);
      const reserved = { bytes: Math.max(0, bytes), entries: existing ? 0 : 1 };
      kept.push({ op: 'put', resource, kind: data.kind, generation, data: value, reserved });
      addedBytes += bytes;
      addedEntries += reserved.entries;
      batch.set(key, { storageTime: value.storageTime, valueLength: value.entry.value.length });
    }
    const pending = this.pending;
    if ((slot?.entries.size ?? 0) + (pending.entriesOf.get(slotKey(resource, data.kind)) ?? 0) + addedEntries > kind.maxCount) {
      throw new OverlayError(ErrorCode.DataTooLarge, `${kind.name} holds at most ${kind.maxCount} entries`);
    }
    if ((this.resources.get(resource)?.bytes ?? 0) + (pending.bytesOf.get(resource) ?? 0) + addedBytes > this.limits.maxBytesPerResource) {
      throw new OverlayError(ErrorCode.DataTooLarge, 'quota: this Resource-ID is full here');
    }
    if (this.bytesHeld + pending.bytes + addedBytes > this.limits.maxBytesTotal) throw new OverlayError(ErrorCode.DataTooLarge, 'quota: this peer is full');
    if (this.limits.maxEntries !== undefined && this.entryCount + pending.entries + addedEntries > this.limits.maxEntries) {
      throw new OverlayError(ErrorCode.DataTooLarge, `quota: this peer holds its most entries (${this.limits.maxEntries}; its memory is capped)`);
    }
    for (const change of kept) this.reserve(change, 1);
    return kept;
  }

  /** Gives back what checked changes held of the quotas, when they will not be applied (the backend failed). */
  release(changes: readonly StorageChange[]): void {
    for (const change of changes) this.reserve(change, -1);
  }

  private reserve(change: StorageChange, sign: 1 | -1): void {
    if (change.op !== 'put' || !change.reserved) return;
    const { bytes, entries } = change.reserved;
    const pending = this.pending;
    pending.bytes += sign * bytes;
    pending.entries += sign * entries;
    adjust(pending.bytesOf, change.resource, sign * bytes);
    adjust(pending.entriesOf, slotKey(change.resource, change.kind), sign * entries);
  }

  /** Applies durable changes (after the backend acknowledged them, or when replaying it). */
  apply(change: StorageChange): void {
    let resource = this.resources.get(change.resource);
    if (change.op === 'remove') {
      const slot = slotOf(resource, change.kind);
      const held = slot?.entries.get(change.key);
      // The sweep saw one value expire; a Store of a newer one may have been applied since.
      if (!resource || !slot || !held || (change.storageTime !== undefined && held.storageTime !== change.storageTime)) return;
      const old = slot.entries.delete(change.key)!;
      this.letGoOfCertificate(old.certificate);
      this.account(resource, -old.valueLength, -1);
      if (slot.entries.size === 0) resource.slots = without(resource.slots, slot);
      if (resource.slots.length === 0) this.resources.delete(change.resource);
      return;
    }
    this.reserve(change, -1); // held as its own now, or passed over
    if (!resource) this.resources.set(change.resource, (resource = { slots: [], bytes: 0 }));
    let slot = slotOf(resource, change.kind);
    if (!slot) resource.slots = appended(resource.slots, (slot = { kind: change.kind, generation: 0n, entries: new EntryList() }));
    const old = slot.entries.get(entryKeyText(change.data.entry.key));
    if (old && old.storageTime > change.data.storageTime) return;
    this.account(resource, change.data.entry.value.length - (old?.valueLength ?? 0), old ? 0 : 1);
    slot.entries.set(HeldValue.pack(change.data, this.sharedCertificate(change.data.certificate)));
    if (old) this.letGoOfCertificate(old.certificate);
    if (change.generation > slot.generation) slot.generation = change.generation;
  }

  private account(resource: ResourceEntry, bytes: number, entries: number): void {
    resource.bytes += bytes;
    this.bytesHeld += bytes;
    this.entryCount += entries;
  }

  /**
   * One copy of each signer's certificate however many values it signed (and an exact-size one:
   * a decoded certificate is a view into the whole message that carried it).
   */
  private sharedCertificate(decoded: Uint8Array): Uint8Array {
    const certKey = base64(decoded);
    let shared = this.certificates.get(certKey);
    if (!shared) this.certificates.set(certKey, (shared = { bytes: new Uint8Array(decoded), uses: 0 }));
    shared.uses++;
    return shared.bytes;
  }

  /** A value signed under `certificate` is gone: the certificate goes with the last of them. */
  private letGoOfCertificate(certificate: Uint8Array): void {
    const certKey = base64(certificate);
    const shared = this.certificates.get(certKey);
    if (shared && --shared.uses === 0) this.certificates.delete(certKey);
  }

  /** Certificates held for the values held (one each, however many values a signer stored). */
  get certificatesHeld(): number {
    return this.certificates.size;
  }

  generation(resource: Id, kind: number): bigint {
    return slotOf(this.resources.get(resource), kind)?.generation ?? 0n;
  }

  fetch(resource: Id, kind: number, selector: Selector, nowMs: number): FetchKindResponse {
    this.kind(kind);
    const slot = slotOf(this.resources.get(resource), kind);
    const values = slot ? select(slot.entries, selector).filter((v) => !isExpired(v, nowMs)).map((v) => v.unpack()) : [];
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

  /**
   * RFC 6940 s7.4.4: for each kind, the closest Resource-ID at or after `from` holding values of
   * it. One pass over what is held, however many kinds are asked; an unknown kind is refused.
   */
  find(from: Id, kinds: readonly number[]): (Id | null)[] {
    for (const kind of kinds) this.kind(kind);
    const best: (Id | null)[] = kinds.map(() => null);
    for (const [resource, held] of this.resources) {
      if (resource < from) continue;
      kinds.forEach((kind, i) => {
        const closest = best[i];
        if ((closest === null || resource < closest) && slotOf(held, kind)) best[i] = resource;
      });
    }
    return best;
  }

  /** Entries past their lifetime, as removals to make durable. */
  expired(nowMs: number): StorageChange[] {
    const out: StorageChange[] = [];
    for (const [resource, { slots }] of this.resources) {
      for (const { kind, entries } of slots) {
        for (const value of entries.values()) if (isExpired(value, nowMs)) out.push({ op: 'remove', resource, kind, key: value.keyText, storageTime: value.storageTime });
      }
    }
    return out;
  }

  /** Everything held, as the changes that would rebuild it (for compaction and replication). */
  changesFor(resource?: Id): StorageChange[] {
    const out: StorageChange[] = [];
    const held = this.resources.get(resource ?? -1n);
    const pick: [Id, ResourceEntry][] = resource === undefined ? [...this.resources] : held ? [[resource, held]] : [];
    for (const [r, { slots }] of pick) {
      for (const { kind, generation, entries } of slots) for (const held of entries.values()) out.push({ op: 'put', resource: r, kind, generation, data: held.unpack() });
    }
    return out;
  }

  /** How many entries `resource` holds, of every kind. */
  entriesOf(resource: Id): number {
    return this.resources.get(resource)?.slots.reduce((n, slot) => n + slot.entries.size, 0) ?? 0;
  }

  resourceIds(): Id[] {
    return [...this.resources.keys()];
  }

  holds(resource: Id): boolean {
    return this.resources.has(resource);
  }

  get size(): { resources: number; entries: number; bytes: number } {
    return { resources: this.resources.size, entries: this.entryCount, bytes: this.bytesHeld };
  }
}

/** A kind's slot at one Resource-ID, as the pending counts know it. */
function slotKey(resource: Id, kind: number): string {
  return `${resource}/${kind}`;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** Adds `by` to a count, forgetting it at 0. */
function adjust<K>(counts: Map<K, number>, key: K, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}

function checkModel(kind: KindDefinition, value: StoredData): void {
  const key = value.entry.key;
  const ok = kind.model === 'single' ? key === null : kind.model === 'array' ? typeof key === 'number' : key instanceof Uint8Array;
  if (!ok) throw new OverlayError(ErrorCode.InvalidMessage, `${kind.name} is a ${kind.model} kind; the entry key does not fit`);
}

/** The entries a selector names, looked up by key where it names few (no scan of a big array). */
function select(entries: EntryList, selector: Selector): HeldValue[] {
  if ('all' in selector || ('keys' in selector && selector.keys.length === 0)) return [...entries.values()];
  const keys: EntryKey[] = [];
  if ('keys' in selector) keys.push(...selector.keys);
  else {
    const span = selector.ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
    if (span > entries.size) {
      const inRange = (index: number | undefined) => index !== undefined && selector.ranges.some(([a, b]) => index >= a && index <= b);
      return [...entries.values()].filter((v) => inRange(v.index));
    }
    for (const [a, b] of selector.ranges) for (let i = a; i <= b; i++) keys.push(i);
  }
  const out: HeldValue[] = [];
  for (const key of keys) {
    const value = entries.get(entryKeyText(key));
    if (value) out.push(value);
  }
  return out;
}
