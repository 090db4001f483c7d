import { sealPayload } from '../../src/identity/message-signing.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { overlayHash } from '../../src/identity/ids.js';
import { encodeFrame, FrameType } from '../../src/wire/frame.js';
import { type Destination, DestinationKind } from '../../src/wire/message.js';
import { MessageCode } from '../../src/wire/message-codes.js';
import { attachAns, attachReq, CandidateType } from '../../src/wire/messages/attach.js';
import type { BodyCodec } from '../../src/wire/messages/body-codec.js';
import { ChordUpdateType } from '../../src/wire/messages/chord-view.js';
import { errorAns } from '../../src/wire/messages/error.js';
import { joinAns, joinReq } from '../../src/wire/messages/join.js';
import { leaveAns, leaveReq } from '../../src/wire/messages/leave.js';
import { pingAns, pingReq } from '../../src/wire/messages/ping.js';
import { probeAns, probeReq, ProbeType } from '../../src/wire/messages/probe.js';
import { routeQueryAns, routeQueryReq } from '../../src/wire/messages/route-query.js';
import { updateAns, updateReq } from '../../src/wire/messages/update.js';
import { storeAns, storeReq } from '../../src/wire/messages/store.js';
import { fetchAns, fetchReq } from '../../src/wire/messages/fetch.js';
import { statAns, statReq } from '../../src/wire/messages/stat.js';
import { findAns, findReq } from '../../src/wire/messages/find.js';
import { signValue } from '../../src/storage/value-signing.js';
import { configUpdateAns, configUpdateReq } from '../../src/wire/messages/config-update.js';
import { appAttachAns, appAttachReq } from '../../src/wire/messages/app-attach.js';
import { sipTunnelAns, sipTunnelReq } from '../../src/wire/messages/sip-tunnel.js';
import { encodeSecurityFrame, helloSignatureInput, type LinkHello, sealedFrameAad } from '../../src/wire/link-security.js';
import { sealBytes } from '../../src/link/secure/link-crypto.js';
import { TEST_OVERLAY, testIdentity } from '../helpers/fixtures.js';

/*
 * The values behind docs/vectors/protocol.json. Everything is fixed (IDs, addresses, keys from
 * fixed seeds; Ed25519 signatures are deterministic), so the hex never changes unless the
 * encoding does, and a change of encoding shows up as a failing vector.
 */
const A = 0x0123456789abcdef0123456789abcdefn;
const B = 0xfedcba9876543210fedcba9876543210n;
const C = 0x00000000000000000000000000000001n;
const contactA = { id: A, address: { host: '198.18.0.1', port: 6084 } };
const contactB = { id: B, address: { host: '2001:db8::1', port: 6084 } };
const view = { uptimeSeconds: 3600, type: ChordUpdateType.Full, predecessors: [contactA], successors: [contactB] };

const noteSigner = testIdentity(1);
const storedNote = signValue(ed25519Suite, noteSigner, C, 0xf0001, { key: 0, exists: true, value: new TextEncoder().encode('hello') }, 1767225600000n, 3600);

export interface BodyVector<T> {
  readonly codec: BodyCodec<T>;
  readonly value: T;
}

function body<T>(codec: BodyCodec<T>, value: T): BodyVector<unknown> {
  return { codec, value } as BodyVector<unknown>;
}

export const bodyVectors: Record<string, BodyVector<unknown>> = {
  'join-req': body(joinReq, { joiningPeerId: A }),
  'join-req-behind-nat': body(joinReq, { joiningPeerId: A, attachFirst: true }),
  'join-ans': body(joinAns, { view }),
  'update-req': body(updateReq, { view }),
  'update-req-behind-nat': body(updateReq, {
    view: { ...view, successors: [{ ...contactB, attachFirst: true }], senderAttachFirst: true },
  }),
  'update-ans': body(updateAns, { view: { ...view, type: ChordUpdateType.Neighbors, predecessors: [] } }),
  'leave-req': body(leaveReq, { leavingPeerId: B, view }),
  'leave-ans': body(leaveAns, {}),
  'route-query-req': body(routeQueryReq, { sendUpdate: false, destination: { kind: DestinationKind.Resource, id: C } }),
  'route-query-ans': body(routeQueryAns, { nextPeer: contactB }),
  'route-query-ans-responsible': body(routeQueryAns, { nextPeer: null }),
  'probe-req': body(probeReq, { requested: [ProbeType.ResponsibleSet, ProbeType.Uptime] }),
  'probe-ans': body(probeAns, { responsibleSet: 0x01000000, uptimeSeconds: 86400 }),
  'ping-req': body(pingReq, {}),
  'ping-ans': body(pingAns, { responseId: 0x1122334455667788n, time: 1767225600000n }),
  'attach-req': body(attachReq, {
    candidates: [
      { type: CandidateType.Host, address: contactA.address, priority: 2130706431 },
      { type: CandidateType.ServerReflexive, address: { host: '198.18.0.11', port: 40123 }, priority: 1694498815 },
    ],
    sendUpdate: true,
    ufrag: 'Xm3q0A',
    pwd: 'q1w2e3r4t5y6u7i8o9p0as',
  }),
  'attach-ans': body(attachAns, { candidates: [{ type: CandidateType.Host, address: contactB.address, priority: 2130706431 }], ufrag: 'b7Zk2Q', pwd: 'z9x8c7v6b5n4m3l2k1j0hg' }),
  'error-ans': body(errorAns, { code: 10, info: 'TTL exceeded' }),
  'store-req': body(storeReq, { resource: C, replicaNumber: 0, kinds: [{ kind: 0xf0001, generation: 0n, values: [storedNote] }] }),
  'store-ans': body(storeAns, { kinds: [{ kind: 0xf0001, generation: 4n, replicas: [A, B] }] }),
  'fetch-req-all': body(fetchReq, { resource: C, specifiers: [{ kind: 1, generation: 0n, selector: { all: true } }] }),
  'fetch-req-ranges': body(fetchReq, { resource: C, specifiers: [{ kind: 0xf0001, generation: 3n, selector: { ranges: [[0, 4]] } }] }),
  'fetch-req-keys': body(fetchReq, { resource: C, specifiers: [{ kind: 1, generation: 0n, selector: { keys: [new Uint8Array([1, 2])] } }] }),
  'fetch-ans': body(fetchAns, { kinds: [{ kind: 0xf0001, generation: 4n, values: [storedNote] }] }),
  'stat-req': body(statReq, { resource: C, specifiers: [{ kind: 1, generation: 0n, selector: { all: true } }] }),
  'stat-ans': body(statAns, {
    kinds: [{ kind: 1, generation: 2n, values: [{ storageTime: 1767225600000n, lifetime: 3600, key: new Uint8Array(16), exists: true, length: 5, sha256: new Uint8Array(32) }] }],
  }),
  'find-req': body(findReq, { resource: C, kinds: [1, 2] }),
  'find-ans': body(findAns, { results: [{ kind: 1, closest: B }, { kind: 2, closest: null }] }),
  'config-update-req': body(configUpdateReq, { config: new Uint8Array([0xd2, 0x84]) }),
  'config-update-ans': body(configUpdateAns, { newer: null }),
  'sip-tunnel-req': body(sipTunnelReq, { sip: new TextEncoder().encode('OPTIONS sip:bob@smiths.example SIP/2.0\r\n\r\n') }),
  'sip-tunnel-ans': body(sipTunnelAns, {}),
  'app-attach-req': body(appAttachReq, { application: 5060, candidates: [] }),
  'app-attach-ans': body(appAttachAns, { application: 5060, candidates: [{ type: CandidateType.Host, address: contactB.address, priority: 2113929216 }] }),
};

const identity = testIdentity(1);
const destinations: Destination[] = [{ kind: DestinationKind.Resource, id: C }];
const header = {
  overlay: overlayHash(TEST_OVERLAY),
  configSequence: 3,
  ttl: 99,
  via: [A],
  destinations,
  transactionId: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  code: MessageCode.PingReq,
};
const payload = sealPayload(ed25519Suite, identity, header, pingReq.encode({}));

export const helloSession = new Uint8Array([1, 1, 2, 3, 5, 8, 13, 21]);
const helloEphemeral = new Uint8Array(32).fill(0x09);

const hello: LinkHello = {
  type: FrameType.LinkHello,
  session: helloSession,
  ephemeral: helloEphemeral,
  time: 1767225600,
  certificate: identity.certificate.bytes,
  signature: ed25519Suite.sign(identity.keys, helloSignatureInput(overlayHash(TEST_OVERLAY), helloSession, helloEphemeral, 1767225600)),
};

/** Whole datagrams: a signed Ping request in a data frame, an ack, a keepalive, link-security frames. */
export const frameVectors: Record<string, Uint8Array> = {
  'data-frame-ping': encodeFrame({
    type: FrameType.Data,
    seq: 7,
    sender: B,
    message: { header: { ...header, fragment: { offset: 0, total: payload.length } }, payload },
  }),
  'ack-frame': encodeFrame({ type: FrameType.Ack, seq: 7, received: 0b101 }),
  'keepalive-frame': encodeFrame({ type: FrameType.Keepalive, seq: 8, sender: B }),
  'certificate-self-issued': identity.certificate.bytes,
  'link-hello': encodeSecurityFrame(hello),
  // The same hello echoing the responder's cookie (16 bytes; the signature does not cover it).
  'link-hello-with-cookie': encodeSecurityFrame({ ...hello, cookie: new Uint8Array(16).fill(0xc0) }),
  'link-cookie': encodeSecurityFrame({ type: FrameType.LinkCookie, initiatorSession: helloSession, cookie: new Uint8Array(16).fill(0xc0) }),
  'link-unknown': encodeSecurityFrame({ type: FrameType.LinkUnknown, session: helloSession }),
  // An ack frame sealed under an all-0x42 key at counter 9 (ChaCha20-Poly1305, nonce = counter).
  'sealed-ack': encodeSecurityFrame({
    type: FrameType.Sealed,
    session: helloSession,
    counter: 9,
    ciphertext: sealBytes(new Uint8Array(32).fill(0x42), 9, sealedFrameAad(helloSession, 9), encodeFrame({ type: FrameType.Ack, seq: 7, received: 0 })),
  }),
};
