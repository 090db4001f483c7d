import type { NatTraversal } from '../nat/nat-traversal.js';
import type { IceResult } from '../nat/ice/ice-session.js';
import { P2psipError } from '../runtime/errors.js';
import { KeyCounts } from '../runtime/key-counts.js';
import type { Address } from '../wire/address.js';
import type { Destination } from '../wire/message.js';
import { ErrorCode, MessageCode } from '../wire/message-codes.js';
import { attachAns, attachReq, type Candidate, CandidateType } from '../wire/messages/attach.js';
import { type Id, idToHex } from '../wire/id.js';
import { OverlayError } from './overlay-error.js';
import type { OverlayRouter, RequestOptions } from './router.js';

/*
 * Attach (RFC 6940 s6.5.1): routed through the overlay to a Node-ID or Resource-ID, it carries
 * the requester's candidates and ICE credentials to the responsible peer, which answers with
 * its own; then both run connectivity checks (nat/ice) and, once the requester has nominated a
 * pair, use it as their direct link. Through a relay when that is the only pair that worked.
 */
export interface AttachOutcome {
  readonly id: Id;
  readonly address: Address;
  /** The link goes through a relay peer (either side's allocation). */
  readonly relayed: boolean;
  readonly remoteType: IceResult['remoteType'];
  /** From sending the Attach to the nominated pair. */
  readonly setupMs: number;
  /** The candidates the responder gave. */
  readonly candidates: readonly Candidate[];
}

export class AttachFailed extends P2psipError {
  override readonly name = 'AttachFailed';
}

export interface AttachCounters {
  attachesSent: number;
  attachesAnswered: number;
  direct: number;
  relayed: number;
  failed: number;
}

export type AttachListener = (outcome: AttachOutcome) => void;

/** RFC 8445 s5.1.2.1 type preference 126 for host candidates (AppAttach's SIP address). */
export function hostCandidates(address: Address): Candidate[] {
  return [{ type: CandidateType.Host, address, priority: (126 << 24) >>> 0 }];
}

/** Attaches one node may have us answering at once (each may send checks on up to 100 pairs). */
const MAX_SESSIONS_PER_ORIGIN = 4;

export class AttachService {
  readonly counters: AttachCounters = { attachesSent: 0, attachesAnswered: 0, direct: 0, relayed: 0, failed: 0 };
  private readonly listeners: AttachListener[] = [];
  /** Attaches we are answering (checks under way), per origin node. */
  private readonly answering = new KeyCounts();

  constructor(
    private readonly router: OverlayRouter,
    private readonly nat: NatTraversal,
  ) {
    router.handle(MessageCode.AttachReq, (req) => {
      const request = attachReq.decode(req.body);
      // Each Attach makes us send checks: one sender gets a few sessions at once, not the node's all.
      const origin = idToHex(req.origin);
      if (this.answering.of(origin) >= MAX_SESSIONS_PER_ORIGIN) throw new OverlayError(ErrorCode.InProgress, 'too many Attaches in progress from this node');
      const session = this.nat.ice.createSession();
      if (!session) throw new OverlayError(ErrorCode.InProgress, 'too many Attaches in progress');
      this.answering.add(origin);
      session.onDone(() => this.answering.remove(origin));
      this.counters.attachesAnswered++;
      const candidates = this.nat.candidates();
      this.nat.prepareChecks(request.candidates);
      req.respond(attachAns.encode({ candidates, ufrag: session.local.ufrag, pwd: session.local.pwd }));
      session.start('controlled', request, candidates[0].priority, request.candidates);
      session.onDone((result) => this.done(req.origin, result, request.candidates, this.router.clock.now() - (result?.setupMs ?? 0)));
    });
  }

  /** Learned of every link an Attach set up, in either direction. */
  onAttached(listener: AttachListener): void {
    this.listeners.push(listener);
  }

  attach(destination: Destination, options: RequestOptions, done: (error: P2psipError | undefined, outcome?: AttachOutcome) => void): void {
    const session = this.nat.ice.createSession();
    if (!session) return done(new AttachFailed('too many Attaches in progress'));
    const startedAt = this.router.clock.now();
    const candidates = this.nat.candidates();
    const body = attachReq.encode({ candidates, sendUpdate: false, ufrag: session.local.ufrag, pwd: session.local.pwd });
    this.counters.attachesSent++;
    this.router.request([destination], MessageCode.AttachReq, body, (error, response) => {
      if (error || !response) {
        session.close();
        return done(error ?? new AttachFailed('no answer'));
      }
      let answer;
      try {
        answer = attachAns.decode(response.body);
      } catch (decodeError) {
        session.close();
        return done(decodeError as P2psipError);
      }
      this.nat.prepareChecks(answer.candidates);
      session.start('controlling', answer, candidates[0].priority, answer.candidates);
      session.onDone((result) => {
        const outcome = this.done(response.responder, result, answer.candidates, startedAt);
        done(outcome ? undefined : new AttachFailed(`no path to ${response.responder.toString(16).slice(0, 8)}: every connectivity check failed`), outcome);
      });
    }, options);
  }

  private done(id: Id, result: IceResult | undefined, candidates: readonly Candidate[], startedAt: number): AttachOutcome | undefined {
    if (!result) {
      this.counters.failed++;
      return undefined;
    }
    const relayed = result.base === 'relay' || result.remoteType === 'relay';
    if (relayed) this.counters.relayed++;
    else this.counters.direct++;
    this.nat.selected(result.base, result.remote);
    this.router.connections.learn(id, result.remote);
    const outcome = { id, address: result.remote, relayed, remoteType: result.remoteType, setupMs: this.router.clock.now() - startedAt, candidates };
    for (const listener of this.listeners) listener(outcome);
    return outcome;
  }
}
