import type { Random } from '../runtime/random.js';

/*
 * Hosts are points on a plane the size of a continent; one-way latency is a fixed access delay
 * plus distance, so triangles are consistent and nearby homes are quick to each other.
 * Range: 5 ms to about 75 ms one way.
 */
const ACCESS_DELAY_MS = 5;
const PLANE_MS = 50;

export class LatencyModel {
  private readonly positions = new Map<string, [number, number]>();

  constructor(private readonly random: Random) {}

  place(host: string): void {
    this.positions.set(host, [this.random.float() * PLANE_MS, this.random.float() * PLANE_MS]);
  }

  oneWay(from: string, to: string): number {
    const a = this.positions.get(from) ?? [0, 0];
    const b = this.positions.get(to) ?? [0, 0];
    return ACCESS_DELAY_MS + Math.hypot(a[0] - b[0], a[1] - b[1]);
  }
}
