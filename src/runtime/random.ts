import { randomBytes } from 'node:crypto';

/** Injected randomness: a seeded generator in the simulator and tests, the OS in production. */
export interface Random {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  bytes(length: number): Uint8Array;
}

/** Uniform integer in [0, bound). */
export function randomInt(random: Random, bound: number): number {
  return Math.floor(random.float() * bound);
}

/** Exponentially distributed delay with the given mean, for Poisson arrivals and jitter. */
export function randomExponential(random: Random, mean: number): number {
  return -Math.log(1 - random.float()) * mean;
}

/**
 * xoshiro128** (Blackman and Vigna): small, fast, and good enough for simulation.
 * Seeded through splitmix32 so that nearby seeds give unrelated streams.
 */
export class SeededRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  float(): number {
    return this.u32() / 4294967296;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const word = this.u32();
      for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (word >>> (8 * j)) & 0xff;
    }
    return out;
  }

  /** An independent generator, so that adding a consumer does not shift everyone else's stream. */
  fork(): SeededRandom {
    return new SeededRandom(this.u32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The operating system's randomness. */
export class SystemRandom implements Random {
  u32(): number {
    return randomBytes(4).readUInt32LE(0);
  }
  float(): number {
    return this.u32() / 4294967296;
  }
  bytes(length: number): Uint8Array {
    return new Uint8Array(randomBytes(length));
  }
}
