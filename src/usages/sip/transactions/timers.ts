/** RFC 3261 s17 timer values (Table 4). */
export const T1_MS = 500;
export const T2_MS = 4_000;
export const T4_MS = 5_000;
/** Timers B, F, H, J: 64*T1. */
export const TIMEOUT_MS = 64 * T1_MS;
/** Timer C (s16.6 step 11): a proxy gives up on an unanswered INVITE branch after more than three minutes (the RFC says "greater than"). */
export const TIMER_C_MS = 181_000;
