import { hostCandidates } from '../overlay/attach-service.js';
import type { OverlayRouter } from '../overlay/router.js';
import type { Logger } from '../runtime/log.js';
import type { KindDefinition } from '../storage/kind.js';
import type { StorageClient } from '../storage/storage-client.js';
import type { RemoteHomes } from '../usages/sip/proxy/proxy.js';
import type { SipFlow, SipTransport } from '../usages/sip/transport/sip-transport.js';
import { sipTunnelAns, sipTunnelReq } from '../wire/messages/sip-tunnel.js';
import { fetchRegistrations } from '../usages/sip/overlay/registrations.js';
import { type Address, addressKey } from '../wire/address.js';
import { type Id, idFromHex, idToHex } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import { ErrorCode, MessageCode } from '../wire/message-codes.js';
import { appAttachAns, appAttachReq, SIP_APPLICATION } from '../wire/messages/app-attach.js';

/*
 * How a home peer reaches another home's phones (RFC 7904 s4): fetch the callee's
 * SIP-REGISTRATION record (values checked against their signers), take the home peer it routes
 * to, and ask that peer with AppAttach (RFC 6940 s6.5.2) where its SIP service listens. When
 * AppAttach gets no answer, the address it gives is behind a NAT, or direct SIP is turned off,
 * SIP to that peer goes through the overlay instead (serveSipTunnel), for the call and its in-dialog requests alike. Answers are
 * cached for half a minute, so a call and a burst of calls cost one lookup.
 */
const CACHE_MS = 30_000;
const SLOW_RESOLVE_MS = 1_000;

export class OverlayHomes implements RemoteHomes {
  private readonly cache = new Map<string, { flow: SipFlow | undefined; at: number }>();
  /**
   * Peers whose SIP address AppAttach confirmed we reach directly (the address it gave is where
   * the overlay reaches them too). SIP goes straight only to those; to every other home, in-dialog
   * requests included (a BYE from our callee to a caller's home behind a NAT or a firewall, which
   * we never asked), it goes through the overlay.
   */
  private readonly reachable = new Map<string, string>();
  lookups = 0;

  constructor(
    private readonly router: OverlayRouter,
    private readonly storage: StorageClient,
    private readonly kind: KindDefinition,
    private readonly log: Logger,
    /** false: never send SIP to other homes directly, always through the overlay. */
    private readonly direct = true,
  ) {}

  peer(nodeId: string, address: Address): SipFlow {
    return this.direct && this.reachable.get(nodeId) === addressKey(address) ? { transport: 'UDP', remote: address, nodeId } : { transport: 'OVERLAY', remote: address, nodeId };
  }

  resolve(aor: string, done: (flow: SipFlow | undefined) => void): void {
    const now = this.router.clock.now();
    const cached = this.cache.get(aor);
    if (cached && now - cached.at < CACHE_MS) return done(cached.flow);
    this.lookups++;
    let fetchedAt = now;
    const finish = (flow: SipFlow | undefined): void => {
      const at = this.router.clock.now();
      if (this.cache.size > 1024) this.cache.clear();
      this.cache.set(aor, { flow, at });
      // A call waits for this: a slow one is worth a line (which step took the time).
      const fields = { aor, via: flow?.transport ?? 'not-found', fetchMs: fetchedAt - now, appAttachMs: at - fetchedAt };
      if (at - now >= SLOW_RESOLVE_MS) this.log.info('sip-home-slow', fields);
      else this.log.debug('sip-home', fields);
      done(flow);
    };
    fetchRegistrations(this.storage, this.kind, aor, (error, found) => {
      fetchedAt = this.router.clock.now();
      if (error || !found) return finish(undefined);
      // A route's last destination is the home peer holding the phones' bindings.
      const homes = found.registrations.flatMap(({ registration: r }) => (r.type === 'route' ? [r.destinations[r.destinations.length - 1].id] : []));
      if (homes.length === 0) return finish(undefined);
      const through = { transport: 'OVERLAY' as const, remote: { host: '0.0.0.0', port: 0 }, nodeId: idToHex(homes[0]) };
      if (!this.direct) return finish(through);
      this.appAttach(homes, 0, (flow) => finish(flow ?? through));
    });
  }

  /** Asks each home peer in turn until one answers with its SIP address. */
  private appAttach(homes: readonly Id[], i: number, done: (flow: SipFlow | undefined) => void): void {
    if (i >= homes.length) return done(undefined);
    const body = appAttachReq.encode({ application: SIP_APPLICATION, candidates: [] });
    this.router.request([nodeDestination(homes[i])], MessageCode.AppAttachReq, body, (error, response) => {
      let candidates;
      try {
        candidates = !error && response ? appAttachAns.decode(response.body).candidates : undefined;
      } catch {
        // An answer this version cannot read (another version's, a rogue peer's) is no answer:
        // thrown, it ended this callback, and the call waited for a lookup that never came back (leak review F4).
        candidates = undefined;
      }
      // No candidate: its SIP port takes nothing unasked; SIP goes to it through the overlay.
      if (candidates && candidates.length === 0) return done(undefined);
      const address = candidates?.[0]?.address;
      // Direct SIP only to a home whose SIP address is where the overlay reaches it too: a
      // home behind a NAT answers with its private address, so its SIP goes through the overlay
      // (over the link its Attach set up, direct or relayed) instead.
      const linked = this.router.connections.proven(homes[i]);
      const nodeId = idToHex(homes[i]);
      if (address && linked && linked.host === address.host) {
        if (this.reachable.size >= 1024) this.reachable.clear();
        this.reachable.set(nodeId, addressKey(address));
        return done({ transport: 'UDP', remote: address, nodeId });
      }
      this.reachable.delete(nodeId);
      if (address) {
        this.log.info('sip-home-behind-nat', { home: idToHex(homes[i]), sip: addressKey(address), overlay: linked ? addressKey(linked) : null });
        return done(undefined);
      }
      this.log.info('app-attach-failed', { home: idToHex(homes[i]), error: error?.message });
      this.appAttach(homes, i + 1, done);
    }, { attempts: 3, timeoutMs: 2_000 }); // a link that went stale costs one short try, not five seconds
  }
}

/**
 * SIP through the overlay: messages for a peer go in a tunnel request routed to its Node-ID;
 * those that arrive are handed to the SIP transport as if from a flow named by the sender.
 * The SIP layer counts the overlay as a reliable transport (no retransmissions of its own, as
 * over TCP), so a tunnel request that goes unanswered is sent again, by another first hop: a
 * copy that did arrive twice is a retransmission the SIP transactions absorb.
 */
const TUNNEL_TRY = { timeoutMs: 1_500, attempts: 4 };

export function serveSipTunnel(router: OverlayRouter, transport: SipTransport, log: Logger): void {
  transport.setOverlaySender((nodeId, bytes) => {
    const sentAt = router.clock.now();
    router.request([nodeDestination(idFromHex(nodeId))], MessageCode.SipTunnelReq, sipTunnelReq.encode({ sip: bytes }), (error) => {
      const ms = router.clock.now() - sentAt;
      if (error) log.info('sip-tunnel-failed', { home: nodeId.slice(0, 8), error: error.message, ms });
      else if (ms >= TUNNEL_TRY.timeoutMs) log.info('sip-tunnel-slow', { home: nodeId.slice(0, 8), ms });
    }, TUNNEL_TRY);
  });
  router.handle(MessageCode.SipTunnelReq, (request) => {
    const { sip } = sipTunnelReq.decode(request.body);
    request.respond(sipTunnelAns.encode({}));
    transport.receiveFromOverlay(sip, idToHex(request.origin), request.previousHop?.address ?? { host: '0.0.0.0', port: 0 });
  });
}

/**
 * Answers AppAttach for SIP with this peer's SIP address (others: Not Found); with no candidate
 * at all when what nobody asked for cannot reach it (a NAT or a firewall that filters, as in
 * front of a peer on the home router itself): then SIP to it goes through the overlay.
 */
export function serveSipAppAttach(router: OverlayRouter, sipAddress: () => Address | undefined, reachableUnasked: () => boolean = () => true): void {
  router.handle(MessageCode.AppAttachReq, (request) => {
    const { application } = appAttachReq.decode(request.body);
    const address = application === SIP_APPLICATION ? sipAddress() : undefined;
    if (!address) return request.fail(ErrorCode.NotFound, `no application ${application} on this node`);
    const candidates = reachableUnasked() ? hostCandidates(address) : [];
    router.log.debug('app-attach', { from: idToHex(request.origin), sip: candidates.length ? addressKey(address) : 'through the overlay' });
    request.respond(appAttachAns.encode({ application, candidates }));
  });
}
