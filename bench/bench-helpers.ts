import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

/** Shared by the benchmarks that run real processes. */
export async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Resident {
  rss: number;
  peak: number;
  /** Anonymous pages (heap, malloc, stacks): what the process alone costs the device. */
  anon: number;
  /** Pages of files, chiefly the node binary's code: shared, and reclaimable under pressure. */
  file: number;
}

/** A process's resident memory in MB, from /proc. */
export function residentMb(pid: number): Resident {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (field: string) => Math.round(Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) / 102.4) / 10;
  return { rss: mb('VmRSS'), peak: mb('VmHWM'), anon: mb('RssAnon'), file: mb('RssFile') };
}
