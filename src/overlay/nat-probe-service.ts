import type { Link } from '../link/link.js';
import { CHANGE_IP, CHANGE_PORT } from '../nat/behavior-discovery.js';
import type { ChangeResponder } from '../nat/nat-traversal.js';
import { decodeStun, StunClass, StunError, StunMethod } from '../nat/stun/message.js';
import { KeyedRateLimiter } from '../runtime/token-bucket.js';
import type { Logger } from '../runtime/log.js';
import { type Address, addressKey } from '../wire/address.js';
import type { Id } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import { ErrorCode, MessageCode } from '../wire/message-codes.js';
import type { Contact } from '../wire/messages/contact.js';
import { natProbeAns, natProbeReq } from '../wire/messages/nat-probe.js';
import { OverlayError } from './overlay-error.js';
import type { OverlayRouter } from './router.js';
import type { Topology } from './topology/topology.js';

/*
 * A public peer's side of RFC 5780 discovery. "Change port": the answer leaves from a fresh UDP
 * port opened for it. "Change IP": another public peer among our neighbours sends it, asked
 * with NatProbe (wire/messages/nat-probe.ts). A peer sends what it is asked to only for enrolled
 * peers, only STUN success answers, and at most a few per second per asker.
 */
export interface NatProbeDeps {
  readonly router: OverlayRouter;
  readonly topology: Topology;
  readonly host: () => Address;
  readonly sendRaw: (to: Address, datagram: Uint8Array) => void;
  /** Opens a UDP socket (a peer that may open more than its overlay port). */
  readonly openSocket?: (bind: Address) => Promise<Link>;
  readonly log: Logger;
}

export class NatProbeService implements ChangeResponder {
  readonly counters = { changePort: 0, changeIp: 0, probesSent: 0, probesRefused: 0 };
  private readonly budget;

  constructor(private readonly deps: NatProbeDeps) {
    this.budget = new KeyedRateLimiter<Id>({ ratePerSecond: 5, burst: 10 }, deps.router.clock);
    deps.router.handle(MessageCode.NatProbeReq, (req) => {
      const { target, stun } = natProbeReq.decode(req.body);
      if (req.certificate.claims.role === 'client' || !this.budget.allow(req.origin) || !isBindingSuccess(stun)) {
        this.counters.probesRefused++;
        throw new OverlayError(ErrorCode.Forbidden, 'NatProbe: enrolled peers only, STUN Binding answers only, a few per second');
      }
      this.counters.probesSent++;
      deps.sendRaw(target, stun);
      req.respond(natProbeAns.encode({}));
    });
  }

  otherAddress(): Address | undefined {
    return this.partner()?.address;
  }

  send(flags: number, to: Address, answer: Uint8Array): void {
    if (flags & CHANGE_IP) {
      const partner = this.partner();
      if (!partner) return;
      this.counters.changeIp++;
      this.deps.router.request([nodeDestination(partner.id)], MessageCode.NatProbeReq, natProbeReq.encode({ target: to, stun: answer }), () => {}, { timeoutMs: 2_000 });
      return;
    }
    if (flags & CHANGE_PORT) {
      if (!this.deps.openSocket) return;
      this.counters.changePort++;
      this.deps.openSocket({ host: this.deps.host().host, port: 0 }).then(
        (socket) => {
          socket.send(to, answer);
          // Close once the datagram has left.
          this.deps.router.clock.setTimer(200, () => void socket.close());
        },
        (error: Error) => this.deps.log.debug('change-port-failed', { error }),
      );
      return;
    }
    this.deps.sendRaw(to, answer);
  }

  /** A neighbour with a public address of its own, on another IP than ours. */
  private partner(): Contact | undefined {
    const own = this.deps.host().host;
    return this.deps.topology.neighbors().find((c) => !c.attachFirst && c.address.host !== own && addressKey(c.address) !== addressKey(this.deps.host()));
  }
}

function isBindingSuccess(bytes: Uint8Array): boolean {
  try {
    const message = decodeStun(bytes);
    return message.klass === StunClass.Success && message.method === StunMethod.Binding;
  } catch (error) {
    if (error instanceof StunError) return false;
    throw error;
  }
}
