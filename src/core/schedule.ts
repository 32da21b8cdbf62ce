/**
 * When to check next. Pure: the randomness comes in as an argument, so the fleet simulation runs the
 * same code as the updater.
 */

export interface SchedulePolicy {
  /**
   * Wait before the start-up check, plus a random part up to `startupSpreadMs`. Default 0 and one
   * interval: installs that start together (a power cut, a rollout of the app itself) check at random
   * times across the next interval instead of in the same minute. A folder with no model yet checks at
   * once unless these are set explicitly; so does an explicit `checkOnStart: true`.
   */
  startupDelayMs: number;
  startupSpreadMs: number;
  /**
   * Between checks. Default 6 h 7 min: an interval that does not divide a day, so a fleet that
   * started together drifts apart instead of meeting at the same hour every day.
   */
  intervalMs: number;
  /** Random spread around the interval, as a fraction of it (0.1: ±10 %). */
  spread: number;
  /** After failed sessions: full-jitter exponential back-off from this base, capped. */
  failureBaseMs: number;
  failureMaxMs: number;
}

const INTERVAL_MS = (6 * 60 + 7) * 60_000;

export const DEFAULT_SCHEDULE: SchedulePolicy = {
  startupDelayMs: 0,
  startupSpreadMs: INTERVAL_MS,
  intervalMs: INTERVAL_MS,
  spread: 0.1,
  failureBaseMs: 60_000,
  failureMaxMs: 6 * 60 * 60_000,
};

/** The default schedule, which now spreads the first check over one interval. Kept for hosts that named it. */
export const FLEET_SCHEDULE: SchedulePolicy = DEFAULT_SCHEDULE;

export interface ScheduleState {
  /** Sessions in a row that failed (0 after a success). */
  failures: number;
  /** The service's Retry-After on the last failure, if any: never check before it. */
  retryAfterMs?: number | undefined;
}

/**
 * Milliseconds until the next scheduled check; `random` is uniform in [0, 1).
 * @example
 * nextCheckDelay(DEFAULT_SCHEDULE, { failures: 0 }, Math.random()) // about 6 h ± 10 %
 */
export function nextCheckDelay(policy: SchedulePolicy, state: ScheduleState, random: number): number {
  if (state.failures === 0) return Math.round(policy.intervalMs * (1 - policy.spread + 2 * policy.spread * random));
  const ceiling = Math.min(policy.failureMaxMs, policy.failureBaseMs * 2 ** (state.failures - 1));
  return Math.max(state.retryAfterMs ?? 0, Math.round(random * ceiling));
}

/** Milliseconds from start() to the first check. */
export function startupDelay(policy: SchedulePolicy, random: number): number {
  return Math.round(policy.startupDelayMs + random * policy.startupSpreadMs);
}
