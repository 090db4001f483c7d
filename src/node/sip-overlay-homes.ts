import { resourceId } from '../identity/ids.js';
import { hostCandidates } from '../overlay/attach-service.js';
import type { OverlayRouter } from '../overlay/router.js';
import type { Logger } from '../runtime/log.js';
import type { KindDefinition } from '../storage/kind.js';
import type { StorageClient } from '../storage/storage-client.js';
import type { RemoteHomes } from '../usages/sip/proxy/proxy.js';
import { decodeSipRegistration } from '../usages/sip/overlay/sip-registration.js';
import { type Address, addressKey } from '../wire/address.js';
import { type Id, idToHex } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import { ErrorCode, MessageCode } from '../wire/message-codes.js';
import { appAttachAns, appAttachReq, SIP_APPLICATION } from '../wire/messages/app-attach.js';

/*
 * How a home peer reaches another home's phones (RFC 7904 s4): fetch the callee's
 * SIP-REGISTRATION record (values checked against their signers), take the home peer it routes
 * to, and ask that peer with AppAttach (RFC 6940 s6.5.2) where its SIP service listens. Answers
 * are cached for half a minute, so a call's in-dialog requests and a burst of calls cost one
 * lookup. The answering side is serveSipAppAttach.
 */
const CACHE_MS = 30_000;

export class OverlayHomes implements RemoteHomes {
  private readonly cache = new Map<string, { address: Address | undefined; at: number }>();
  lookups = 0;

  constructor(
    private readonly router: OverlayRouter,
    private readonly storage: StorageClient,
    private readonly kind: KindDefinition,
    private readonly log: Logger,
  ) {}

  resolve(aor: string, done: (address: Address | undefined) => void): void {
    const now = this.router.clock.now();
    const cached = this.cache.get(aor);
    if (cached && now - cached.at < CACHE_MS) return done(cached.address);
    this.lookups++;
    const finish = (address: Address | undefined): void => {
      if (this.cache.size > 1024) this.cache.clear();
      this.cache.set(aor, { address, at: this.router.clock.now() });
      done(address);
    };
    this.storage.fetch(this.kind, resourceId(aor), { all: true }, (error, result) => {
      if (error || !result) return finish(undefined);
      const homes: Id[] = [];
      for (const value of result.values) {
        if (!value.entry.exists) continue;
        try {
          const registration = decodeSipRegistration(value.entry.value);
          if (registration.type === 'route') homes.push(registration.destinations[registration.destinations.length - 1].id);
        } catch {
          // a value that is not a registration: skip it
        }
      }
      if (homes.length === 0) return finish(undefined);
      this.appAttach(homes, 0, finish);
    });
  }

  /** Asks each home peer in turn until one answers with its SIP address. */
  private appAttach(homes: readonly Id[], i: number, done: (address: Address | undefined) => void): void {
    if (i >= homes.length) return done(undefined);
    const body = appAttachReq.encode({ application: SIP_APPLICATION, candidates: [] });
    this.router.request([nodeDestination(homes[i])], MessageCode.AppAttachReq, body, (error, response) => {
      const address = !error && response ? appAttachAns.decode(response.body).candidates[0]?.address : undefined;
      if (address) return done(address);
      this.log.info('app-attach-failed', { home: idToHex(homes[i]), error: error?.message });
      this.appAttach(homes, i + 1, done);
    }, { attempts: 2, timeoutMs: 5_000 });
  }
}

/** Answers AppAttach for SIP with this peer's SIP address (others: Not Found). */
export function serveSipAppAttach(router: OverlayRouter, sipAddress: () => Address | undefined): void {
  router.handle(MessageCode.AppAttachReq, (request) => {
    const { application } = appAttachReq.decode(request.body);
    const address = application === SIP_APPLICATION ? sipAddress() : undefined;
    if (!address) return request.fail(ErrorCode.NotFound, `no application ${application} on this node`);
    router.log.debug('app-attach', { from: idToHex(request.origin), sip: addressKey(address) });
    request.respond(appAttachAns.encode({ application, candidates: hostCandidates(address) }));
  });
}
