/**
 * The bandwidth cap of an updater: one token bucket that every connection of a download draws from,
 * so four connections together stay under `download.maxBytesPerSecond`. The host changes the rate
 * while bytes flow (`updater.setMaxBytesPerSecond`); waiting connections look again at once, and at
 * least every {@link RECHECK_MS} anyway, so a new rate holds within a second. Time comes from the
 * injected timers: tests drive it with a simulated clock.
 */
import { UpdateError } from '../errors.js';
import type { GuardLimits, Timers } from './transferGuard.js';

/** A waiting connection looks at the budget at least this often. */
export const RECHECK_MS = 250;
/** The bucket holds this much time's worth of bytes: a short burst after a pause, no more. */
const BURST_SECONDS = 0.25;

/**
 * @example
 * const budget = new RateBudget(5_000_000, REAL_TIMERS)
 * const waitMs = budget.take(chunk.byteLength) // 0: go on; else pause this long (or until budget.onChange)
 * budget.setRate(undefined) // lifted
 */
export class RateBudget {
  #rate: number | undefined;
  #tokens = 0;
  #last: number;
  readonly #listeners = new Set<() => void>();

  constructor(
    bytesPerSecond: number | undefined,
    private readonly timers: Timers,
  ) {
    this.#rate = checkRate(bytesPerSecond);
    this.#last = timers.now();
    this.#tokens = this.#capacity();
  }

  /** The cap in bytes per second; undefined: none. */
  get bytesPerSecond(): number | undefined {
    return this.#rate;
  }

  /** Changes the cap (undefined lifts it); connections waiting on the budget look again at once. */
  setRate(bytesPerSecond: number | undefined): void {
    const rate = checkRate(bytesPerSecond);
    this.#refill();
    this.#rate = rate;
    this.#tokens = Math.min(this.#tokens, this.#capacity());
    for (const listener of [...this.#listeners]) listener();
  }

  /** Counts `bytes` received; returns the milliseconds to pause before the next (0: none). */
  take(bytes: number): number {
    if (this.#rate === undefined) return 0;
    this.#refill();
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.#rate);
  }

  /** Calls `listener` whenever the rate changes; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #capacity(): number {
    return this.#rate === undefined ? 0 : this.#rate * BURST_SECONDS;
  }

  #refill(): void {
    const now = this.timers.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    if (this.#rate !== undefined) this.#tokens = Math.min(this.#capacity(), this.#tokens + (elapsed * this.#rate) / 1000);
  }
}

function checkRate(bytesPerSecond: number | undefined): number | undefined {
  if (bytesPerSecond === undefined) return undefined;
  if (!(typeof bytesPerSecond === 'number' && Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
    throw new UpdateError('INVALID_ARGUMENT', `download.maxBytesPerSecond must be a positive number of bytes per second (or undefined for no cap), got ${String(bytesPerSecond)}.`);
  }
  return bytesPerSecond;
}

/**
 * One connection's side of the budget: after each piece it receives, `take` says whether to read on;
 * when not, it calls `resume` once the budget allows (looking again at every rate change, and at
 * least every RECHECK_MS, calling `tick` then, so the stall guard knows the pause is ours).
 * @example
 * const pacer = new Pacer(budget, timers, () => response.resume(), () => guard.arrived(0))
 * write(bytes) { ...; return pacer.take(bytes.length) && writerHasRoom }
 */
export class Pacer {
  #timer: unknown;
  #unsubscribe: (() => void) | undefined;
  #disposed = false;

  constructor(
    private readonly budget: RateBudget | undefined,
    private readonly timers: Timers,
    private readonly resume: () => void,
    private readonly tick: () => void = () => undefined,
  ) {}

  /** True while waiting for the budget. */
  get paused(): boolean {
    return this.#unsubscribe !== undefined;
  }

  /** Counts bytes received; false: stop reading until `resume`. */
  take(bytes: number): boolean {
    if (this.budget === undefined || this.#disposed) return true;
    const wait = this.budget.take(bytes);
    if (wait === 0) return !this.paused;
    if (!this.paused) this.#wait(wait);
    return false;
  }

  dispose(): void {
    this.#disposed = true;
    this.#stop();
  }

  #wait(ms: number): void {
    this.#unsubscribe = this.budget!.onChange(() => this.#check());
    this.#timer = this.timers.setTimeout(() => this.#check(), Math.min(ms, RECHECK_MS));
  }

  #stop(): void {
    this.timers.clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #check(): void {
    this.#stop();
    if (this.#disposed) return;
    this.tick();
    const wait = this.budget!.take(0);
    if (wait > 0) this.#wait(wait);
    else this.resume();
  }
}

/**
 * The guard limits of one of `connections` connections under the cap: a connection obeying the cap
 * must not be judged too slow (minBytesPerSecond at most a quarter of its share).
 * @example
 * limitsUnderCap(resolveLimits(), budget, 4)
 */
export function limitsUnderCap(limits: GuardLimits, budget: RateBudget | undefined, connections: number): GuardLimits {
  const rate = budget?.bytesPerSecond;
  if (rate === undefined) return limits;
  return { ...limits, minBytesPerSecond: Math.min(limits.minBytesPerSecond, Math.floor(rate / (4 * connections))) };
}
