/*
 * Jobs run in the order they came, at most `limit` at once; the rest wait as plain entries.
 * For work that would otherwise start thousands of transactions in one go (a storage hand-over),
 * each holding timers and encoded messages until its answer: waiting costs a few words a job.
 */
export class InFlightQueue<T> {
  private waiting: T[] = [];
  private head = 0;
  private running = 0;
  private pumping = false;

  /** `run` starts a job and calls `done` exactly once when it has finished, however it ended. */
  constructor(
    private readonly limit: number,
    private readonly run: (job: T, done: () => void) => void,
  ) {}

  add(job: T): void {
    this.waiting.push(job);
    this.pump();
  }

  /** Forgets the jobs not yet started (those running still finish). */
  clear(): void {
    this.waiting = [];
    this.head = 0;
  }

  get queued(): number {
    return this.waiting.length - this.head;
  }

  get inFlight(): number {
    return this.running;
  }

  private pump(): void {
    // A job that finishes at once calls back into pump: the loop below carries on instead of
    // recursing, so a queue of thousands of such jobs cannot overflow the stack.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.running < this.limit && this.head < this.waiting.length) {
        const job = this.waiting[this.head++];
        this.running++;
        let finished = false;
        this.run(job, () => {
          if (finished) return;
          finished = true;
          this.running--;
          this.pump();
        });
      }
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
    } finally {
      this.pumping = false;
    }
  }
}
