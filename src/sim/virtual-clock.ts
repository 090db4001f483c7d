import type { Clock, TimerHandle } from '../runtime/clock.js';
import { EventQueue, type SimEvent } from './event-queue.js';

/** Virtual time: timers are events on the simulator's agenda, and time jumps from one to the next. */
export class VirtualClock implements Clock {
  private current = 0;
  private readonly queue = new EventQueue();
  private readonly events = new Map<number, SimEvent>();
  private nextId = 1;
  eventsRun = 0;

  /** Virtual wall time starts at a fixed date so certificates and logs replay identically. */
  constructor(private readonly epochMs = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  wallTime(): number {
    return this.epochMs + this.current;
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const id = this.nextId++;
    const event = this.queue.push(this.current + Math.max(0, delayMs), () => {
      this.events.delete(id);
      fire();
    });
    this.events.set(id, event);
    return { id };
  }

  clearTimer(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const event = this.events.get(handle.id);
    if (event) {
      event.cancelled = true;
      this.events.delete(handle.id);
    }
  }

  /** Schedules work that is not a cancellable timer (packet deliveries). */
  schedule(delayMs: number, run: () => void): void {
    this.queue.push(this.current + Math.max(0, delayMs), run);
  }

  /** Runs events until virtual time `until` (inclusive) or the agenda empties. */
  runUntil(until: number): void {
    for (;;) {
      const next = this.queue.peek();
      if (!next || next.at > until) break;
      this.queue.pop();
      if (next.cancelled) continue;
      this.current = next.at;
      this.eventsRun++;
      next.run();
    }
    this.current = Math.max(this.current, until);
  }

  pendingTimers(): number {
    return this.events.size;
  }
}
