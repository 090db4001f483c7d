/** How long to wait before trying again: `first` after the first failure, then doubled each time up to `max`. */
export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** The wait after a failure, given the wait before it (undefined after a success or at the start). */
export function nextWait(previousMs: number | undefined, backoff: Backoff): number {
  return previousMs === undefined ? Math.min(backoff.firstMs, backoff.maxMs) : Math.min(backoff.maxMs, previousMs * 2);
}
