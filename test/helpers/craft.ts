import type { NodeIdentity } from '../../src/identity/identity.js';
import { overlayHash } from '../../src/identity/ids.js';
import { sealPayload } from '../../src/identity/message-signing.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { encodeFrame, FrameType } from '../../src/wire/frame.js';
import type { Id } from '../../src/wire/id.js';
import type { Destination } from '../../src/wire/message.js';

/** Builds a datagram the way a (possibly hostile) node would, for attack tests. */
export interface CraftOptions {
  readonly overlay: string;
  readonly destinations: Destination[];
  readonly code: number;
  readonly body: Uint8Array;
  readonly ttl?: number;
  readonly configSequence?: number;
  readonly via?: Id[];
  readonly transactionId?: Uint8Array;
  readonly hopSender?: Id;
  readonly seq?: number;
  /** Changes the body after signing. */
  readonly tamper?: boolean;
}

export function craftDatagram(signer: NodeIdentity, o: CraftOptions): Uint8Array {
  const header = {
    overlay: overlayHash(o.overlay),
    configSequence: o.configSequence ?? 0,
    ttl: o.ttl ?? 100,
    via: o.via ?? [],
    destinations: o.destinations,
    transactionId: o.transactionId ?? new Uint8Array(8).fill(0x5a),
    code: o.code,
  };
  let payload = sealPayload(ed25519Suite, signer, header, o.body);
  if (o.tamper) {
    payload = new Uint8Array(payload);
    payload[3] ^= 0xff; // inside the body bytes
  }
  return encodeFrame({
    type: FrameType.Data,
    seq: o.seq ?? 1,
    sender: o.hopSender ?? signer.nodeId,
    message: { header: { ...header, fragment: { offset: 0, total: payload.length } }, payload },
  });
}
