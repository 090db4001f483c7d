import { createSocket, type Socket } from 'node:dgram';
import { createOpenIdentity } from '../../src/identity/open-identity.js';
import { overlayHash } from '../../src/identity/ids.js';
import { ed25519Suite } from '../../src/identity/signature-suite.js';
import { OpenTrustPolicy } from '../../src/identity/trust.js';
import { SealedLink } from '../../src/link/secure/sealed-link.js';
import { UdpLink } from '../../src/link/udp-link.js';
import { SystemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { SystemRandom } from '../../src/runtime/random.js';
import type { Address } from '../../src/wire/address.js';
import { decodeFrame, FrameType } from '../../src/wire/frame.js';

/*
 * Attackers against real peers on loopback (test/integration/link-attacks.test.ts): an open-mode
 * node of the test's own, with a real sealed link whose every datagram out is recorded (as an
 * on-path observer would see them), and plain UDP sockets that speak without any certificate.
 */
export async function openModeNode(overlay: string, seed: number) {
  const raw = await UdpLink.open({ host: '127.0.0.1', port: 0 }, silentLogger);
  const wire: { to: Address; bytes: Uint8Array }[] = [];
  const send = raw.send.bind(raw);
  raw.send = (to, bytes) => {
    wire.push({ to, bytes });
    send(to, bytes);
  };
  const clock = new SystemClock();
  const identity = createOpenIdentity(new Uint8Array(32).fill(seed), `intruder${seed}@${overlay}`, overlay, Math.floor(Date.now() / 1000));
  const link = new SealedLink(raw, { identity, trust: new OpenTrustPolicy(overlay), suite: ed25519Suite, clock, random: new SystemRandom(), log: silentLogger, overlayId: overlayHash(overlay) });
  const acks: number[] = [];
  link.onDatagram((_, bytes) => {
    if (bytes[0] > 0x03 && decodeFrame(bytes).type === FrameType.Ack) acks.push(decodeFrame(bytes).seq);
  });
  return { identity, raw, link, wire, acks, close: () => link.close() };
}

/** A plain UDP socket on loopback that records what comes back to it. */
export async function bareSocket(): Promise<{ socket: Socket; port: number; received: Uint8Array[]; send: (bytes: Uint8Array, port: number) => void; close: () => void }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const received: Uint8Array[] = [];
  socket.on('message', (m) => received.push(new Uint8Array(m)));
  return {
    socket,
    port: socket.address().port,
    received,
    send: (bytes, port) => socket.send(bytes, port, '127.0.0.1'),
    close: () => socket.close(),
  };
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
