import { keyFingerprint } from '../../identity/ids.js';
import type { IncomingRequest, OverlayRouter } from '../../overlay/router.js';
import type { Topology } from '../../overlay/topology/topology.js';
import type { Clock } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import { type Id, idToHex } from '../../wire/id.js';
import { nodeDestination } from '../../wire/message.js';
import { ErrorCode, MessageCode } from '../../wire/message-codes.js';
import { configUpdateAns, configUpdateReq } from '../../wire/messages/config-update.js';
import { isNewerConfig, openConfig, type SignedConfig } from './overlay-config.js';

/*
 * Keeps this node's configuration document in step with the overlay's (RFC 6940 s6.3.2.1 and
 * s6.5.3). A node adopts a document only when the overlay's root authority signed it and its
 * sequence is higher. A newly adopted document is pushed to every neighbour at once, so it
 * floods the ring in a few hops; a node that was away learns of it from the configuration
 * sequence in the first message it exchanges, and one ConfigUpdate brings the side that is
 * behind up to date.
 */
export interface ConfigSyncCounters {
  updatesReceived: number;
  adopted: number;
  refused: number;
  pushes: number;
  exchanges: number;
}

export interface ConfigSyncDeps {
  readonly router: OverlayRouter;
  readonly topology: Topology;
  readonly clock: Clock;
  readonly log: Logger;
  readonly initial: SignedConfig;
  /** Makes a newly adopted document take effect (trust anchors, storage on disk, links). */
  readonly adopt: (signed: SignedConfig) => void;
}

/** One completed exchange per node at most this often, however many of its messages show a mismatch. */
const EXCHANGE_INTERVAL_MS = 30_000;
const MAX_REMEMBERED = 1024;

export class ConfigSync {
  readonly counters: ConfigSyncCounters = { updatesReceived: 0, adopted: 0, refused: 0, pushes: 0, exchanges: 0 };
  private current: SignedConfig;
  private readonly rootFingerprint: string;
  private readonly lastExchange = new Map<Id, number>();

  constructor(private readonly deps: ConfigSyncDeps) {
    this.current = deps.initial;
    this.rootFingerprint = keyFingerprint(deps.initial.config.authorities[0].publicKey);
  }

  start(): void {
    this.deps.router.handle(MessageCode.ConfigUpdateReq, (request) => this.onUpdate(request));
    this.deps.router.trackConfiguration(this.current.config.sequence, (theirs, sender) => this.onMismatch(theirs, sender));
  }

  get config(): SignedConfig {
    return this.current;
  }

  /** A document signed here (the root authority changed something): take it and tell everyone. */
  publish(signed: SignedConfig): void {
    if (!isNewerConfig(this.current.config, signed.config)) return;
    this.take(signed, undefined);
  }

  private onUpdate(request: IncomingRequest): void {
    this.counters.updatesReceived++;
    const { config } = configUpdateReq.decode(request.body);
    let candidate: SignedConfig;
    try {
      candidate = openConfig(config, this.rootFingerprint);
    } catch (error) {
      this.counters.refused++;
      request.fail(ErrorCode.Forbidden, (error as Error).message);
      return;
    }
    if (isNewerConfig(this.current.config, candidate.config)) {
      this.take(candidate, request.origin);
      request.respond(configUpdateAns.encode({ newer: null }));
    } else {
      const oursIsNewer = isNewerConfig(candidate.config, this.current.config);
      request.respond(configUpdateAns.encode({ newer: oursIsNewer ? this.current.bytes : null }));
    }
  }

  /** A verified message carried another sequence: one exchange brings whichever side is behind up to date. */
  private onMismatch(theirs: number, sender: Id): void {
    const now = this.deps.clock.now();
    const last = this.lastExchange.get(sender);
    if (last !== undefined && now - last < EXCHANGE_INTERVAL_MS) return;
    if (this.lastExchange.size >= MAX_REMEMBERED) this.lastExchange.delete(this.lastExchange.keys().next().value as Id);
    this.lastExchange.set(sender, now);
    this.counters.exchanges++;
    this.deps.log.info('config-mismatch', { peer: idToHex(sender), theirs, ours: this.current.config.sequence });
    this.send(sender);
  }

  private send(to: Id): void {
    this.deps.router.request([nodeDestination(to)], MessageCode.ConfigUpdateReq, configUpdateReq.encode({ config: this.current.bytes }), (error, response) => {
      // Not answered by the node we meant (a newcomer not yet routable reaches whoever is
      // responsible for its ID): it does not count, so its next message tries again.
      if (error || !response || response.responder !== to) {
        this.lastExchange.delete(to);
        return;
      }
      let newer: Uint8Array | null;
      try {
        newer = configUpdateAns.decode(response.body).newer;
      } catch {
        return;
      }
      if (!newer) return;
      try {
        const candidate = openConfig(newer, this.rootFingerprint);
        if (isNewerConfig(this.current.config, candidate.config)) this.take(candidate, to);
      } catch (error) {
        this.counters.refused++;
        this.deps.log.warn('config-refused', { from: idToHex(to), error: (error as Error).message });
      }
    });
  }

  private take(signed: SignedConfig, from: Id | undefined): void {
    this.current = signed;
    this.counters.adopted++;
    this.deps.router.trackConfiguration(signed.config.sequence);
    this.deps.log.info('config-adopted', { sequence: signed.config.sequence, revoked: signed.config.revoked.length });
    const told = new Set<Id>(from === undefined ? [] : [from]);
    for (const contact of this.deps.topology.neighbors()) {
      if (told.has(contact.id) || contact.id === this.deps.router.nodeId) continue;
      told.add(contact.id);
      this.counters.pushes++;
      this.send(contact.id);
    }
    // Only now are links to newly revoked nodes dropped: the pushes above went out over them
    // first, so a revoked device learns it was revoked (its status says so) instead of guessing.
    this.deps.adopt(signed);
  }
}
