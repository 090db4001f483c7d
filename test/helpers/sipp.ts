import { reapOnExit } from './reaper.js';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Runs SIPp (Debian's sip-tester), a SIP implementation nobody here wrote, against a peer on loopback. */
export const HAS_SIPP = spawnSync('sipp', ['-v'], { encoding: 'utf8' }).status !== null;
export const SKIP_WITHOUT_SIPP = HAS_SIPP ? false : 'sipp not installed (.ci/run installs sip-tester)';

export interface SippRun {
  readonly code: number | null;
  readonly errors: string;
}

/** Runs a scenario (a file in test/integration/sipp, or a path) to its end. */
export function runSipp(scenario: string, target: string, args: string[], cwd: string, timeoutSeconds = 20, netns?: string): SippRun {
  const result = spawnSync(
    ...inNamespace(netns, [target, '-sf', path.isAbsolute(scenario) ? scenario : path.resolve('test/integration/sipp', scenario), '-i', '127.0.0.1', '-m', '1', '-l', '1', '-nostdin', '-timeout', `${timeoutSeconds}s`, '-timeout_error', '-trace_err', ...args]),
    { cwd, encoding: 'utf8', timeout: (timeoutSeconds + 5) * 1000 },
  );
  return { code: result.status, errors: `${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}${result.status === 0 ? '' : errorLog(cwd)}` };
}

/** What SIPp said went wrong (-trace_err writes it to a file in its working directory): that run's file (by its pid), else the newest. */
function errorLog(cwd: string, pid?: number): string {
  const logs = readdirSync(cwd)
    .filter((f) => f.endsWith(pid === undefined ? '_errors.log' : `_${pid}_errors.log`))
    .map((f) => ({ f, at: statSync(path.join(cwd, f)).mtimeMs }))
    .sort((x, y) => y.at - x.at);
  return logs.length ? `\n--- ${logs[0].f}\n${readFileSync(path.join(cwd, logs[0].f), 'utf8').slice(-1500)}` : '';
}

/** A scenario with its @NAME@ placeholders filled in, written where SIPp runs. */
export function scenarioFrom(template: string, values: Record<string, string>, cwd: string): string {
  let text = readFileSync(path.resolve('test/integration/sipp', template), 'utf8');
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`@${name}@`, value);
  const file = path.join(cwd, `${template.replace(/\.xml$/, '')}-${Object.values(values).join('-').replace(/[^A-Za-z0-9]/g, '_')}.xml`);
  writeFileSync(file, text);
  return file;
}

export interface BackgroundSipp {
  readonly done: Promise<SippRun>;
  /** SIPp's pid (its trace files carry it). */
  readonly pid: number | undefined;
  stop(): void;
}

/** Starts SIPp as a phone waiting for a call (a UAS scenario) and resolves when it ends. */
export function startSipp(scenarioFile: string, args: string[], cwd: string, timeoutSeconds = 30, netns?: string): BackgroundSipp {
  const child = reapOnExit(spawn(...inNamespace(netns, ['-sf', scenarioFile, '-i', '127.0.0.1', '-m', '1', '-nostdin', '-timeout', `${timeoutSeconds}s`, '-timeout_error', '-trace_err', ...args]), { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  // `ip netns exec` execs SIPp in its own process: the pid is SIPp's, and names its error log.
  const done = new Promise<SippRun>((resolve) => child.once('exit', (code) => resolve({ code, errors: `${output.slice(-3000)}${code === 0 ? '' : errorLog(cwd, child.pid)}` })));
  return { done, pid: child.pid, stop: () => child.kill('SIGKILL') };
}

/** SIPp's command line, run inside a NAT lab namespace when one is named. */
function inNamespace(netns: string | undefined, args: string[]): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, 'sipp', ...args]] : ['sipp', args];
}
