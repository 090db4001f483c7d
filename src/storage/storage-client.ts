import type { NodeIdentity } from '../identity/identity.js';
import type { SignatureSuite } from '../identity/signature-suite.js';
import type { TrustPolicy } from '../identity/trust.js';
import type { OverlayRouter } from '../overlay/router.js';
import type { P2psipError } from '../runtime/errors.js';
import type { Id } from '../wire/id.js';
import { resourceDestination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import type { DecodeError } from '../wire/decode-error.js';
import { fetchAns, fetchReq, type FetchKindResponse, type Selector } from '../wire/messages/fetch.js';
import { storeAns, storeReq, type StoreAns } from '../wire/messages/store.js';
import type { StoredData, StoredEntry } from '../wire/messages/stored-data.js';
import { checkAccess } from './access-control.js';
import type { KindDefinition } from './kind.js';
import { isExpired } from './held-value.js';
import { signValue, verifyValue } from './value-signing.js';

/*
 * The storing and fetching node's side of RFC 6940 s7: values are signed here before they
 * leave, and every fetched value's signature and access policy are checked again here before
 * it is believed (a rogue responsible peer cannot make up or alter values).
 */
export interface FetchResult {
  readonly generation: bigint;
  readonly values: StoredData[];
  /** Values the answering peer returned that failed our checks, and were dropped. */
  readonly rejected: number;
  readonly responder: Id;
}

/** Three recursive tries (retries take other paths), then hop by hop past peers that drop. */
const POLICY = { attempts: 3, timeoutMs: 5_000, iterativeFallback: true };

export class StorageClient {
  constructor(
    private readonly router: OverlayRouter,
    private readonly identity: NodeIdentity,
    private readonly trust: TrustPolicy,
    private readonly suite: SignatureSuite,
  ) {}

  /** `signer`: whose certificate the values carry (a user this node acts for); this node's own by default. */
  store(kind: KindDefinition, resource: Id, entries: readonly StoredEntry[], lifetimeSeconds: number, done: (error: P2psipError | undefined, answer?: StoreAns) => void, signer: NodeIdentity = this.identity): void {
    const storageTime = BigInt(Math.floor(this.router.clock.wallTime()));
    const values = entries.map((entry) => signValue(this.suite, signer, resource, kind.id, entry, storageTime, lifetimeSeconds));
    const body = storeReq.encode({ resource, replicaNumber: 0, kinds: [{ kind: kind.id, generation: 0n, values }] });
    this.router.request([resourceDestination(resource)], MessageCode.StoreReq, body, (error, response) => {
      if (error || !response) return done(error);
      let answer: StoreAns;
      try {
        answer = storeAns.decode(response.body);
      } catch (decodeError) {
        return done(decodeError as DecodeError); // an answer we cannot read is an error, not a hang
      }
      done(undefined, answer);
    }, POLICY);
  }

  fetch(kind: KindDefinition, resource: Id, selector: Selector, done: (error: P2psipError | undefined, result?: FetchResult) => void): void {
    const body = fetchReq.encode({ resource, specifiers: [{ kind: kind.id, generation: 0n, selector }] });
    this.router.request([resourceDestination(resource)], MessageCode.FetchReq, body, (error, response) => {
      if (error || !response) return done(error);
      let answer: FetchKindResponse | undefined;
      try {
        answer = fetchAns.decode(response.body).kinds.find((k) => k.kind === kind.id);
      } catch (decodeError) {
        return done(decodeError as DecodeError); // an answer we cannot read is an error, not a hang
      }
      const now = this.router.clock.wallTime();
      let rejected = 0;
      const values = (answer?.values ?? []).filter((value) => {
        try {
          const signer = verifyValue(this.suite, this.trust, resource, kind.id, value, Math.floor(now / 1000));
          if (checkAccess(kind, resource, value.entry.key, signer) === null && !isExpired(value, now)) return true;
        } catch {
          // a forged or altered value: not believed
        }
        rejected++;
        return false;
      });
      done(undefined, { generation: answer?.generation ?? 0n, values, rejected, responder: response.responder });
    }, POLICY);
  }
}
