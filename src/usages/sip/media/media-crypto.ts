import type { NodeIdentity } from '../../../identity/identity.js';
import { publicKeyObject, signBytes, verifyBytes } from '../../../identity/keys.js';
import { deriveLinkKeys, type EphemeralKey, ephemeralFromBytes, openBytes, sealBytes } from '../../../link/secure/link-crypto.js';
import { ReceiveWindow } from '../../../link/receive-window.js';
import type { Random } from '../../../runtime/random.js';
import { encodeCbor } from '../../../wire/cbor.js';

/*
 * The internet leg of a call between two home peers, sealed (issue 16): each peer makes a fresh
 * X25519 key for the call and signs it, with each SDP it sends, by its enrolled identity, so the
 * keys are agreed between the two homes' certificates and never reused by another call. Each
 * datagram is
 *   counter (6 bytes, big-endian) || flags (1 byte) || ChaCha20-Poly1305(key of this direction,
 *     nonce = counter, aad = counter || flags)
 * and is opened only once (a strict replay window). The flags are the sender's word about the
 * path (relay-stream.ts): in the clear, but under the tag, so nobody on the way (a relay peer
 * carrying the overlay link, say) can change them. Phones never see any of this: they send plain
 * RTP to their own home peer, which seals it for the internet and opens it at the other end.
 */
const COUNTER_BYTES = 6;
const HEADER_BYTES = COUNTER_BYTES + 1;
/** Per datagram: the counter, the flags and the tag. */
export const MEDIA_SEAL_OVERHEAD = HEADER_BYTES + 16;

export type MediaRole = 'offerer' | 'answerer';

/**
 * What a home states, signed by its enrolled identity, with every SDP it sends another home in a
 * call (v3). The signature covers the SDP itself, so nothing in it can be changed or added on the
 * way (where the media goes, hold, codecs); the home it is for, so an offer cannot be replayed to
 * another home; a sequence number, so an older SDP of the call cannot be played again; and the
 * time, so a new call's offer is believed for minutes, not for ever.
 */
export interface SdpStatement {
  readonly callId: string;
  /** The sender's role in the call (it never changes, whoever offers later). */
  readonly role: MediaRole;
  /** The sender's X25519 key for the call. */
  readonly publicKey: Uint8Array;
  /** The home it is for (hex Node-ID); '' when the sender cannot name it (a late offer in a 200). */
  readonly toHome: string;
  /** 1, 2, ... for each SDP the sender sends in the call. */
  readonly sequence: number;
  /** Wall-clock seconds at signing. */
  readonly time: number;
  /** The SDP as sent, its key line left out, lines joined with CRLF. */
  readonly body: string;
}

const statementInput = (s: SdpStatement): Uint8Array => encodeCbor(['p2psip-media-sdp-v3', s.callId, s.role, s.publicKey, s.toHome, s.sequence, s.time, s.body]);

/** A fresh X25519 key for one call. */
export function createCallKey(random: Random): EphemeralKey {
  return ephemeralFromBytes(random.bytes(32));
}

export function signStatement(identity: NodeIdentity, statement: SdpStatement): Uint8Array {
  return signBytes(identity.keys, statementInput(statement));
}

/** Whether the statement was signed by the key its sender's (already checked) certificate names. */
export function statementSignedBy(statement: SdpStatement, signature: Uint8Array, certifiedKey: Uint8Array): boolean {
  return statement.publicKey.length === 32 && verifyBytes(publicKeyObject(certifiedKey), statementInput(statement), signature);
}

/**
 * Both directions' sealers for one channel of a call, once both keys are known. RTP and RTCP
 * (and each stream) are channels of their own: each has its own keys, so no two ever share a nonce.
 */
export function mediaSealers(own: EphemeralKey, role: MediaRole, offererKey: Uint8Array, answererKey: Uint8Array, callId: string, channel: string): { send: MediaSealer; receive: MediaOpener } {
  const peer = role === 'offerer' ? answererKey : offererKey;
  const callSalt = new TextEncoder().encode(callId);
  // v2: the flags byte joined the header (a v1 home's datagrams fail the AEAD check, and are counted).
  const keys = deriveLinkKeys(own, peer, callSalt, new Uint8Array(0), offererKey, answererKey, encodeCbor(['p2psip media keys v2', callId, channel]));
  const [out, back] = role === 'offerer' ? [keys.initiatorToResponder, keys.responderToInitiator] : [keys.responderToInitiator, keys.initiatorToResponder];
  return { send: new MediaSealer(out), receive: new MediaOpener(back) };
}

export class MediaSealer {
  private counter = 0;

  constructor(private readonly key: Uint8Array) {}

  /** `flags`: 0 to 255, read back by the opener (see MediaOpener.open). */
  seal(packet: Uint8Array, flags = 0): Uint8Array {
    const counter = this.counter++;
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUIntBE(counter, 0, COUNTER_BYTES);
    header[COUNTER_BYTES] = flags;
    return new Uint8Array(Buffer.concat([header, sealBytes(this.key, counter, header, packet)]));
  }
}

/**
 * A datagram that opened: the phone's packet (empty for a path probe), the sender's flags, and
 * whether it was sealed after every other that opened (not one held back and let go late).
 */
export interface OpenedMedia {
  readonly packet: Uint8Array;
  readonly flags: number;
  readonly newest: boolean;
}

export interface OpenerCounters {
  opened: number;
  failedAead: number;
  replayed: number;
}

export class MediaOpener {
  readonly counters: OpenerCounters = { opened: 0, failedAead: 0, replayed: 0 };
  private readonly window = new ReceiveWindow(true);

  constructor(private readonly key: Uint8Array) {}

  /** The phone's packet and the flags, or undefined (counted) for a forgery, a damaged datagram or a replay. */
  open(datagram: Uint8Array): OpenedMedia | undefined {
    if (datagram.length < MEDIA_SEAL_OVERHEAD) {
      this.counters.failedAead++;
      return undefined;
    }
    const header = datagram.subarray(0, HEADER_BYTES);
    const counter = Buffer.from(header).readUIntBE(0, COUNTER_BYTES);
    if (!this.window.isFresh(counter)) {
      this.counters.replayed++;
      return undefined;
    }
    const packet = openBytes(this.key, counter, header, datagram.subarray(HEADER_BYTES));
    if (!packet) {
      this.counters.failedAead++;
      return undefined;
    }
    const newest = counter > this.window.highest;
    this.window.accept(counter); // recorded only once authentic, so forgeries cannot burn counters
    this.counters.opened++;
    return { packet, flags: header[COUNTER_BYTES], newest };
  }
}
