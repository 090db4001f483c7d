/**
 * Injected time. Overlay code reads time and arms timers only through a Clock, so the same
 * code runs against the wall clock on a device and against virtual time in the simulator.
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since an arbitrary epoch; monotonic. */
  now(): number;
  /** Milliseconds since the Unix epoch, for certificate expiry and logs. */
  wallTime(): number;
  setTimer(delayMs: number, fire: () => void): TimerHandle;
  clearTimer(handle: TimerHandle | undefined): void;
}

/** The real clock: the only place (with the UDP link) that touches Node's timers. */
export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  now(): number {
    return performance.now();
  }

  wallTime(): number {
    return Date.now();
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const id = this.nextId++;
    const timeout = setTimeout(() => {
      this.timers.delete(id);
      fire();
    }, Math.max(0, delayMs));
    this.timers.set(id, timeout);
    return { id };
  }

  clearTimer(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const timeout = this.timers.get(handle.id);
    if (timeout) clearTimeout(timeout);
    this.timers.delete(handle.id);
  }

  /** Timers still armed; a leak check for tests and status. */
  pendingTimers(): number {
    return this.timers.size;
  }
}
