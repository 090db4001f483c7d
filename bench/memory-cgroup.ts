import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/*
 * A memory cgroup for one benchmarked process, as systemd gives the service one (MemoryHigh=64M
 * in targets/debian/p2psip.service). Under cgroup v2 the limit is memory.high, as in the unit;
 * under v1, which has no such soft ceiling, it is the hard memory.limit_in_bytes, which is
 * stricter. Either way the kernel takes back clean file pages (the node binary's code) to keep
 * the group within the limit. Needs root; absent otherwise.
 */
export interface MemoryCgroup {
  readonly version: 1 | 2;
  /** A shell prefix that joins the group and then runs the command: sh -c '...' CMD ARGS. */
  readonly enter: string[];
  /** Largest usage seen, times the limit was reached, and OOM kills. */
  stats(): { maxUsageMB: number; limitHits: number; oomKills: number };
  remove(): void;
}

const V1_ROOT = '/sys/fs/cgroup/memory';
const V2_ROOT = '/sys/fs/cgroup';

export function memoryCgroup(name: string, limitBytes: number): MemoryCgroup | undefined {
  try {
    if (existsSync(path.join(V1_ROOT, 'memory.limit_in_bytes'))) return v1(path.join(V1_ROOT, name), limitBytes);
    if (readFileSync(path.join(V2_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) return v2(path.join(V2_ROOT, name), limitBytes);
  } catch {
    // not root, or no memory controller: the caller goes without
  }
  return undefined;
}

const mb = (bytes: number) => Math.round(bytes / 104857.6) / 10;

function entering(dir: string): string[] {
  return ['sh', '-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`];
}

function v1(dir: string, limitBytes: number): MemoryCgroup {
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  const read = (file: string) => readFileSync(path.join(dir, file), 'utf8');
  return {
    version: 1,
    enter: entering(dir),
    stats: () => ({
      maxUsageMB: mb(Number(read('memory.max_usage_in_bytes'))),
      limitHits: Number(read('memory.failcnt')),
      oomKills: Number(/^oom_kill (\d+)/m.exec(read('memory.oom_control'))?.[1] ?? 0),
    }),
    remove: () => rmdirSync(dir),
  };
}

function v2(dir: string, limitBytes: number): MemoryCgroup {
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'memory.high'), String(limitBytes));
  const peakFile = path.join(dir, 'memory.peak');
  return {
    version: 2,
    enter: entering(dir),
    stats: () => {
      const events = readFileSync(path.join(dir, 'memory.events'), 'utf8');
      return {
        maxUsageMB: mb(Number(readFileSync(existsSync(peakFile) ? peakFile : path.join(dir, 'memory.current'), 'utf8'))),
        limitHits: Number(/^high (\d+)/m.exec(events)?.[1] ?? 0),
        oomKills: Number(/^oom_kill (\d+)/m.exec(events)?.[1] ?? 0),
      };
    },
    remove: () => rmdirSync(dir),
  };
}
