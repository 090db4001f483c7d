import { type Address, addressKey } from '../wire/address.js';
import { encodeCbor } from '../wire/cbor.js';
import { FrameType } from '../wire/frame.js';
import { decodeSecurityFrame, encodeSecurityFrame, type LinkHello, type SecurityFrame } from '../wire/link-security.js';
import { randomInt, type Random } from '../runtime/random.js';
import type { SimLink, SimNetwork } from './sim-network.js';
import type { VirtualClock } from './virtual-clock.js';

/*
 * Rogue peers that attack the link layer (`p2psip simulate --rogue F --rogue-attacks ...`), the
 * attacks of issue 13 played by enrolled peers inside the overlay, on the real link code:
 *   counter-overflow  a sealed frame with counter 2^48 on a live session of its own
 *   hello-relay       an honest node's hello (sent to the rogue) handed to another peer from the
 *                     rogue's address, the cookie echoed: trying to pass as that node
 *   hello-replay      hellos captured a minute earlier replayed to other peers from the hello's
 *                     own node's address (spoofed)
 *   junk-hellos       hellos with bad signatures from spoofed addresses, to use up handshake budgets
 *   unknown-session   sealed frames for unknown sessions with a victim's address as the source
 *                     (reflection)
 * The simulator reports what honest peers suffered: link faults and impersonations, beside
 * lookup success.
 */
export const LINK_ATTACKS = ['counter-overflow', 'hello-relay', 'hello-replay', 'junk-hellos', 'unknown-session'] as const;
export type LinkAttack = (typeof LINK_ATTACKS)[number];
export type RogueAttack = 'drop' | LinkAttack;

/** Junk hellos and spoofed frames a rogue sends in each one-second round. */
const FLOOD_PER_ROUND = 200;
/** A captured hello is replayed after this long (past the time its reply is kept). */
const REPLAY_AFTER_MS = 60_000;

interface Captured {
  readonly hello: LinkHello;
  readonly bytes: Uint8Array;
  readonly from: Address;
  readonly at: number;
}

export class RogueLinkAttacker {
  sent = 0;
  private readonly hellos: Captured[] = [];
  private readonly sessionsOut = new Map<string, { to: Address; session: Uint8Array }>();
  private readonly relayed = new Map<string, Captured>();
  private round = 0;

  constructor(
    private readonly raw: SimLink,
    private readonly network: SimNetwork,
    private readonly clock: VirtualClock,
    private readonly random: Random,
    private readonly attacks: readonly LinkAttack[],
    private readonly victims: () => Address[],
  ) {
    // Tap the rogue's own wire: what honest initiators send it, and the sessions it sends on.
    const receive = raw.receive.bind(raw);
    raw.receive = (from, datagram) => {
      this.observeIncoming(from, datagram);
      receive(from, datagram);
    };
    const send = raw.send.bind(raw);
    raw.send = (to, datagram) => {
      const frame = tryDecode(datagram);
      if (frame?.type === FrameType.Sealed) this.sessionsOut.set(addressKey(to), { to, session: frame.session });
      send(to, datagram);
    };
  }

  /** Attacks once a second from `from` for `durationMs` (virtual). */
  schedule(from: number, durationMs: number): void {
    for (let t = 0; t < durationMs; t += 1000) this.clock.schedule(from - this.clock.now() + t, () => this.attack());
  }

  private attack(): void {
    const kind = this.attacks[this.round++ % this.attacks.length];
    const victims = this.victims();
    if (victims.length === 0) return;
    const victim = () => victims[randomInt(this.random, victims.length)];
    switch (kind) {
      case 'counter-overflow':
        for (const { to, session } of this.sessionsOut.values()) this.rawSend(to, encodeSecurityFrame({ type: FrameType.Sealed, session, counter: 2 ** 48, ciphertext: new Uint8Array(16) }));
        return;
      case 'hello-relay': {
        const captured = this.hellos.at(-1);
        if (!captured) return;
        const to = victim();
        if (addressKey(to) === addressKey(captured.from)) return;
        this.relayed.set(Buffer.from(captured.hello.session).toString('hex'), captured);
        this.rawSend(to, encodeSecurityFrame({ ...captured.hello, cookie: undefined }));
        return;
      }
      case 'hello-replay':
        for (const captured of this.hellos) {
          if (this.clock.now() - captured.at < REPLAY_AFTER_MS) continue;
          this.spoof(captured.from, victim(), captured.bytes);
        }
        return;
      case 'junk-hellos': {
        const hello = this.hellos.at(-1)?.hello;
        if (!hello) return;
        for (let i = 0; i < FLOOD_PER_ROUND; i++) {
          const junk = encodeSecurityFrame({ ...hello, session: this.random.bytes(8), signature: this.random.bytes(64), cookie: undefined });
          this.spoof({ host: `198.19.${randomInt(this.random, 256)}.${randomInt(this.random, 256)}`, port: 1 + randomInt(this.random, 65_000) }, victim(), junk);
        }
        return;
      }
      case 'unknown-session': {
        const target = victim();
        for (let i = 0; i < FLOOD_PER_ROUND; i++) this.spoof(victim(), target, encodeCbor([FrameType.Sealed, this.random.bytes(8), 0, this.random.bytes(16)]));
        return;
      }
    }
  }

  private observeIncoming(from: Address, datagram: Uint8Array): void {
    const frame = tryDecode(datagram);
    if (frame?.type === FrameType.LinkHello && !frame.cookie) {
      this.hellos.push({ hello: frame, bytes: datagram, from, at: this.clock.now() });
      if (this.hellos.length > 16) this.hellos.shift();
    }
    // A peer asked for the cookie of a hello the rogue relayed: echo it, as a real relayer would.
    if (frame?.type === FrameType.LinkCookie) {
      const captured = this.relayed.get(Buffer.from(frame.initiatorSession).toString('hex'));
      if (captured) this.rawSend(from, encodeSecurityFrame({ ...captured.hello, cookie: frame.cookie }));
    }
  }

  private rawSend(to: Address, datagram: Uint8Array): void {
    this.sent++;
    this.raw.send(to, datagram);
  }

  private spoof(from: Address, to: Address, datagram: Uint8Array): void {
    this.sent++;
    this.network.deliver(from, to, datagram);
  }
}

function tryDecode(datagram: Uint8Array): SecurityFrame | undefined {
  try {
    return decodeSecurityFrame(datagram);
  } catch {
    return undefined;
  }
}
