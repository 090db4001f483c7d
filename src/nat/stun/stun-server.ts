import type { Address } from '../../wire/address.js';
import { fingerprintValid, seal } from './integrity.js';
import { Attr, decodeStun, encodePlainAddress, encodeXorAddress, encodeStun, StunClass, StunError, StunMethod } from './message.js';

/*
 * Every peer answers STUN Binding requests on its overlay port (RFC 8489 s6.3, s8): the answer
 * tells the asker the address its request came from (XOR-MAPPED-ADDRESS), which is how a node
 * behind a NAT learns its server-reflexive address. No credentials: a Binding answer reveals
 * only what the asker's own packet showed. A request with a comprehension-required attribute
 * we do not know gets 420 (s6.3.1.1); anything that is not a Binding request is not answered.
 * No amplification: an answer is never larger than its request, but for the plain Binding answer
 * (XOR-MAPPED-ADDRESS alone, as small as RFC 8489 allows: 32 bytes for IPv4). SOFTWARE, RFC
 * 5780's OTHER-ADDRESS and FINGERPRINT come only to a request padded to their size (PADDING,
 * RFC 5780 s7.6, as our own behaviour discovery sends); a 420 that would be larger is dropped.
 */
// Eight bytes, so that no padding follows it: some parsers (miniupnpd 2.3's) do not skip padding.
export const STUN_SOFTWARE = 'p2psip/1';
const KNOWN = new Set<number>([Attr.ResponsePort, Attr.Padding, Attr.Username, Attr.MessageIntegrity, Attr.MessageIntegritySha256, Attr.Priority, Attr.Realm, Attr.Nonce, Attr.ErrorCode]);
/** What a request must measure to be answered with SOFTWARE, OTHER-ADDRESS and FINGERPRINT too (IPv6 mapped, the largest). */
export const FULL_ANSWER_BYTES = 88;

export interface StunServerCounters {
  bindingsAnswered: number;
  malformed: number;
  ignored: number;
  /** Answers that would have been larger than their request: the 420s dropped. */
  notAmplified: number;
}

export class StunServer {
  readonly counters: StunServerCounters = { bindingsAnswered: 0, malformed: 0, ignored: 0, notAmplified: 0 };

  /** The answer to send back to `from`, if any. */
  answer(bytes: Uint8Array, from: Address, options: { ignore?: readonly number[]; otherAddress?: Address } = {}): Uint8Array | undefined {
    let message;
    try {
      message = decodeStun(bytes);
    } catch (error) {
      if (!(error instanceof StunError)) throw error;
      this.counters.malformed++;
      return undefined;
    }
    if (message.klass !== StunClass.Request || message.method !== StunMethod.Binding) {
      this.counters.ignored++;
      return undefined;
    }
    if (message.attributes.some((a) => a.type === Attr.Fingerprint) && !fingerprintValid(bytes, message)) {
      this.counters.malformed++;
      return undefined;
    }
    const unknown = message.attributes.filter((a) => a.type < 0x8000 && !KNOWN.has(a.type) && !options.ignore?.includes(a.type)).map((a) => a.type);
    if (unknown.length) {
      const list = new Uint8Array(unknown.length * 2);
      unknown.forEach((type, i) => new DataView(list.buffer).setUint16(i * 2, type));
      const code = new Uint8Array([0, 0, 4, 20]);
      const error = encodeStun(StunMethod.Binding, StunClass.Error, message.transactionId, [{ type: Attr.ErrorCode, value: code }, { type: Attr.UnknownAttributes, value: list }]);
      if (error.length > bytes.length) {
        this.counters.notAmplified++;
        return undefined;
      }
      return error;
    }
    this.counters.bindingsAnswered++;
    const mapped = { type: Attr.XorMappedAddress, value: encodeXorAddress(from, message.transactionId) };
    if (bytes.length < FULL_ANSWER_BYTES) return encodeStun(StunMethod.Binding, StunClass.Success, message.transactionId, [mapped]);
    return seal(
      encodeStun(StunMethod.Binding, StunClass.Success, message.transactionId, [
        mapped,
        { type: Attr.Software, value: new TextEncoder().encode(STUN_SOFTWARE) },
        // RFC 5780 s7.4: where a CHANGE-REQUEST's "change IP" answer would come from.
        ...(options.otherAddress ? [{ type: Attr.OtherAddress, value: encodePlainAddress(options.otherAddress) }] : []),
      ]),
    );
  }
}
