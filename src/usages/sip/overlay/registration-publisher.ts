import type { NodeIdentity } from '../../../identity/identity.js';
import { resourceId } from '../../../identity/ids.js';
import { type Backoff, nextWait } from '../../../runtime/backoff.js';
import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import type { Logger } from '../../../runtime/log.js';
import type { KindDefinition } from '../../../storage/kind.js';
import type { StorageClient } from '../../../storage/storage-client.js';
import { type Id, idToBytes } from '../../../wire/id.js';
import { nodeDestination } from '../../../wire/message.js';
import type { Binding } from '../registrar/location.js';
import { encodeSipRegistration } from './sip-registration.js';

/*
 * Keeps the overlay's SIP-REGISTRATION records in step with this peer's bindings (RFC 7904
 * s3): while an AOR has a phone registered here, H(AOR) holds an entry, keyed by the signer's
 * Node-ID, saying "route to this home peer"; it is removed when the last phone leaves (or its
 * binding expires here). It is stored with half again the longest binding's lifetime, so the
 * phones' periodic refreshes cost the overlay nothing until the record would no longer outlive
 * every binding. Values are signed by the user's own certificate (USER-NODE-MATCH), which the
 * signer source provides. A store that fails (the peer is still joining after a restart, the
 * responsible peer just left) is tried again, from 5 s up to every minute, while the AOR has
 * phones here: a phone that refreshes every ten minutes should not leave its user unreachable that long.
 */
export interface UserSigners {
  /** The identity that may sign `user`'s records, or undefined when this peer holds none. */
  signerFor(user: string): NodeIdentity | undefined;
}

export interface PublisherCounters {
  published: number;
  removed: number;
  failures: number;
  unsigned: number;
  refreshesSkipped: number;
}

const LIFETIME_MARGIN_SECONDS = 30;
const RETRY: Backoff = { firstMs: 5_000, maxMs: 60_000 };

export class RegistrationPublisher {
  readonly counters: PublisherCounters = { published: 0, removed: 0, failures: 0, unsigned: 0, refreshesSkipped: 0 };
  /** Until when (wall-clock ms) each AOR's stored record lives. */
  private readonly publishedUntil = new Map<string, number>();
  /** AORs whose record the overlay confirmed storing (and that were not removed since). */
  private readonly confirmed = new Set<string>();
  /** AORs whose last store failed: when it is tried again, and the wait after that. */
  private readonly retries = new Map<string, { timer: TimerHandle; waitMs: number }>();
  private closed = false;

  constructor(
    private readonly storage: StorageClient,
    private readonly kind: KindDefinition,
    private readonly homeNodeId: Id,
    private readonly signers: UserSigners,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The AOR's bindings now, for a store tried again. */
    private readonly bindingsOf: (aor: string) => readonly Binding[] = () => [],
  ) {}

  /** The location service's listener: `aor` is user@domain. */
  bindingsChanged(aor: string, bindings: readonly Binding[]): void {
    if (this.closed) return;
    const retry = this.retries.get(aor);
    if (retry) this.clock.clearTimer(retry.timer);
    const user = aor.slice(0, aor.lastIndexOf('@'));
    const signer = this.signers.signerFor(user);
    if (!signer) {
      this.retries.delete(aor); // nothing to sign with: nothing to try again
      this.counters.unsigned++;
      this.log.warn('registration-not-published', { aor, reason: 'this peer holds no certificate for that user' });
      return;
    }
    const resource = resourceId(aor);
    const key = idToBytes(signer.certificate.claims.nodeIds[0]);
    if (bindings.length === 0) {
      this.publishedUntil.delete(aor);
      this.storage.store(this.kind, resource, [{ key, exists: false, value: new Uint8Array(0) }], 60, (error) => this.done(error, aor, 'removed'), signer);
      return;
    }
    const now = this.clock.wallTime();
    const latest = Math.max(...bindings.map((b) => b.expiresAt));
    if ((this.publishedUntil.get(aor) ?? 0) >= latest + LIFETIME_MARGIN_SECONDS * 1000) {
      this.counters.refreshesSkipped++;
      return;
    }
    const lifetime = Math.ceil((1.5 * Math.max(1000, latest - now)) / 1000) + LIFETIME_MARGIN_SECONDS;
    this.publishedUntil.set(aor, now + lifetime * 1000);
    const value = encodeSipRegistration({ type: 'route', contactPrefs: '', destinations: [nodeDestination(this.homeNodeId)] });
    this.storage.store(this.kind, resource, [{ key, exists: true, value }], lifetime, (error) => this.done(error, aor, 'published'), signer);
  }

  /** Whether the overlay holds `aor`'s record now (as far as this peer last heard). */
  isPublished(aor: string): boolean {
    return this.confirmed.has(aor) && (this.publishedUntil.get(aor) ?? 0) > this.clock.wallTime();
  }

  /** Stops trying failed stores again (the peer is stopping). */
  close(): void {
    this.closed = true;
    for (const retry of this.retries.values()) this.clock.clearTimer(retry.timer);
    this.retries.clear();
  }

  private done(error: Error | undefined, aor: string, what: 'published' | 'removed'): void {
    if (what === 'published' && !error) this.confirmed.add(aor);
    else this.confirmed.delete(aor);
    if (error) {
      this.publishedUntil.delete(aor);
      this.counters.failures++;
      // A first failure is most often the overlay still forming around a peer that just started:
      // a warning only once a retry has failed too (every restart began with one: walkthrough F5).
      this.log[this.retries.has(aor) ? 'warn' : 'info']('registration-store-failed', { aor, error: error.message });
      this.retryLater(aor, what);
      return;
    }
    this.retries.delete(aor);
    this.counters[what]++;
  }

  private retryLater(aor: string, what: 'published' | 'removed'): void {
    if (this.closed || what === 'removed') return; // a removal the overlay missed expires with its lifetime
    const before = this.retries.get(aor);
    this.clock.clearTimer(before?.timer);
    const waitMs = nextWait(before?.waitMs, RETRY);
    const timer = this.clock.setTimer(waitMs, () => {
      const bindings = this.bindingsOf(aor);
      if (bindings.length === 0) return void this.retries.delete(aor);
      this.bindingsChanged(aor, bindings);
    });
    this.retries.set(aor, { timer, waitMs });
  }
}
