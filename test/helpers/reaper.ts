import type { ChildProcess } from 'node:child_process';

/*
 * Phones, peers and SIPp a test starts must not outlive it: a test process stopped by a signal
 * (a runner's timeout, a hand-stopped CI run) used to leave baresip phones sending RTP into the
 * next run's media ports. Every child the helpers spawn is registered here and killed when this
 * process exits, however it exits short of SIGKILL.
 */
const living = new Set<ChildProcess>();

/** Registers `child` to be killed when this test process ends; returns it. */
export function reapOnExit<T extends ChildProcess>(child: T): T {
  if (living.size === 0) installHandlers();
  living.add(child);
  child.once('exit', () => living.delete(child));
  return child;
}

let installed = false;
function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.once('exit', killAll);
  for (const [signal, number] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(128 + number);
    });
  }
}

function killAll(): void {
  for (const child of living) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  living.clear();
}
