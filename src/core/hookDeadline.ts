/**
 * Deadlines for the host's hooks (migrate, load, healthCheck, unload): a hook that never returns must not
 * hold the updater, and the folder lock, forever. Run on the updater's clock, so tests drive them with
 * xstate's SimulatedClock.
 */
import { UpdateError } from './errors.js';
import { systemTimers, type TimerSource } from './backgroundTimers.js';

export type HookName = 'migrate' | 'load' | 'healthCheck' | 'unload';

/** Milliseconds each hook may take. */
export type HookTimeouts = Record<HookName, number>;

/** The defaults: 5 min migrate, 2 min load, 1 min healthCheck, 30 s unload. */
export const DEFAULT_HOOK_TIMEOUTS: Readonly<HookTimeouts> = { migrate: 5 * 60_000, load: 2 * 60_000, healthCheck: 60_000, unload: 30_000 };

/** A hook's deadline and the clock it runs on. */
export interface HookDeadlines {
  limits: HookTimeouts;
  timers: TimerSource;
}

/**
 * The deadlines for the host's `hookTimeouts` option on `clock` (default: the system's unref'd timers).
 * @example
 * const deadlines = hookDeadlines({ load: 10_000 }, options.clock)
 */
export function hookDeadlines(timeouts: Partial<HookTimeouts> | undefined, clock?: TimerSource): HookDeadlines {
  return { limits: { ...DEFAULT_HOOK_TIMEOUTS, ...timeouts }, timers: clock ?? systemTimers };
}

/** The error a hook past its deadline fails with. */
export function hookTimeoutError(hook: HookName, limitMs: number, version: string): UpdateError {
  return new UpdateError(
    'HOOK_TIMEOUT',
    `The host's ${hook} hook for version ${version} did not finish within ${limitMs} ms; the update was rolled back. Make the hook finish sooner, or raise the limit with the option hookTimeouts.${hook}.`,
  );
}

/**
 * Runs a hook with its deadline: resolves or rejects as the hook does, or rejects with HOOK_TIMEOUT when
 * the deadline passes first (and aborts the signal the hook was given). `late` receives the value of a
 * hook that finishes after its deadline, so what it made can be released.
 * @example
 * const handle = await withDeadline(deadlines, 'load', '1.2.0', () => loader.load(ref), (late) => loader.unload?.(ref, late))
 */
export function withDeadline<T>(
  deadlines: HookDeadlines,
  hook: HookName,
  version: string,
  run: (signal: AbortSignal) => T | Promise<T>,
  late?: (value: T) => void,
): Promise<T> {
  const limit = deadlines.limits[hook];
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const id = deadlines.timers.setTimeout(() => {
      timedOut = true;
      controller.abort(hookTimeoutError(hook, limit, version));
      reject(hookTimeoutError(hook, limit, version));
    }, limit);
    Promise.resolve()
      .then(() => run(controller.signal))
      .then(
        (value) => {
          if (timedOut) late?.(value);
          else {
            deadlines.timers.clearTimeout(id);
            resolve(value);
          }
        },
        (error) => {
          if (timedOut) return;
          deadlines.timers.clearTimeout(id);
          reject(error);
        },
      );
  });
}
