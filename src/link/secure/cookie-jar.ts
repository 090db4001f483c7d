import { bytesEqualInConstantTime } from '../../runtime/constant-time.js';
import type { Clock } from '../../runtime/clock.js';
import type { Random } from '../../runtime/random.js';
import { cookieInput, type LinkHello } from '../../wire/link-security.js';
import { cookieMac } from './link-crypto.js';

/*
 * Stateless return-routability cookies, as DTLS's HelloVerifyRequest (RFC 6347 s4.2.1) and QUIC's
 * Retry do: the responder answers a first hello with a MAC over the hello's source address and
 * signed fields, keeps nothing, and spends a signature check and a key agreement only on a hello
 * that echoes a cookie it made. A spoofed source never sees its cookie, so it never gets past here.
 * The secret rotates; a cookie made under the previous secret is still good, so a cookie lives
 * between one and two rotation periods.
 */
export class CookieJar {
  private current: Uint8Array;
  private previous: Uint8Array;
  private rotatedAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly rotateMs: number,
  ) {
    this.current = random.bytes(32);
    this.previous = random.bytes(32);
    this.rotatedAt = clock.now();
  }

  make(address: string, hello: LinkHello): Uint8Array {
    this.rotate();
    return cookieMac(this.current, cookieInput(address, hello));
  }

  /** True when the hello carries a cookie this node made for that address, lately. */
  valid(address: string, hello: LinkHello): boolean {
    if (!hello.cookie) return false;
    this.rotate();
    const input = cookieInput(address, hello);
    return bytesEqualInConstantTime(cookieMac(this.current, input), hello.cookie) || bytesEqualInConstantTime(cookieMac(this.previous, input), hello.cookie);
  }

  private rotate(): void {
    const now = this.clock.now();
    if (now - this.rotatedAt < this.rotateMs) return;
    // Two periods or more without use: neither old secret may vouch for anything now.
    this.previous = now - this.rotatedAt < 2 * this.rotateMs ? this.current : this.random.bytes(32);
    this.current = this.random.bytes(32);
    this.rotatedAt = now;
  }
}
