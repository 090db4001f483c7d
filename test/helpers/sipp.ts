import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Runs SIPp (Debian's sip-tester), a SIP implementation nobody here wrote, against a peer on loopback. */
export const HAS_SIPP = spawnSync('sipp', ['-v'], { encoding: 'utf8' }).status !== null;
export const SKIP_WITHOUT_SIPP = HAS_SIPP ? false : 'sipp not installed (.ci/run installs sip-tester)';

export interface SippRun {
  readonly code: number | null;
  readonly errors: string;
}

export function runSipp(scenario: string, target: string, args: string[], cwd: string, timeoutSeconds = 20): SippRun {
  const result = spawnSync(
    'sipp',
    [target, '-sf', path.resolve('test/integration/sipp', scenario), '-i', '127.0.0.1', '-m', '1', '-l', '1', '-nostdin', '-timeout', `${timeoutSeconds}s`, '-timeout_error', '-trace_err', ...args],
    { cwd, encoding: 'utf8', timeout: (timeoutSeconds + 5) * 1000 },
  );
  return { code: result.status, errors: `${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}` };
}
