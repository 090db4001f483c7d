import type { Address } from '../../wire/address.js';

/*
 * Which relay to take (issue 16: relays found by name, chosen by measured round-trip time): the
 * first few found are asked a STUN Binding at once, and taken in the order they answered, the
 * fastest first; those that did not answer go last, in the order found. Media through a relay
 * pays its round trip twice, so the nearest relay is worth a few packets to find.
 */
export const RELAYS_MEASURED = 4;

export interface MeasuredRelay<R> {
  readonly relay: R;
  /** Round trip of a Binding request, ms; undefined when it got no answer. */
  readonly rttMs: number | undefined;
}

/** Measures the first RELAYS_MEASURED of `relays` with `ping` and hands them back fastest first. */
export function rankByRoundTrip<R extends { readonly address: Address }>(relays: readonly R[], ping: (address: Address, done: (rttMs: number | undefined) => void) => void, done: (ranked: MeasuredRelay<R>[]) => void): void {
  const measured = relays.slice(0, RELAYS_MEASURED);
  const rest: MeasuredRelay<R>[] = relays.slice(RELAYS_MEASURED).map((relay) => ({ relay, rttMs: undefined }));
  if (measured.length === 0) return done(rest);
  const results: MeasuredRelay<R>[] = [];
  for (const relay of measured) {
    ping(relay.address, (rttMs) => {
      results.push({ relay, rttMs });
      if (results.length < measured.length) return;
      const answered = results.filter((r) => r.rttMs !== undefined).sort((a, b) => a.rttMs! - b.rttMs!);
      const silent = measured.filter((relay) => !answered.some((a) => a.relay === relay)).map((relay) => ({ relay, rttMs: undefined }));
      done([...answered, ...silent, ...rest]);
    });
  }
}
