/**
 * The bandwidth cap of an updater: one budget (a reservation time line, see RateBudget) that every connection of a download draws from,
 * so four connections together stay under `download.maxBytesPerSecond`. The host changes the rate
 * while bytes flow (`updater.setMaxBytesPerSecond`); waiting connections look again at once, and at
 * least every {@link RECHECK_MS} anyway, so a new rate holds within a second. Time comes from the
 * injected timers: tests drive it with a simulated clock.
 */
import { UpdateError } from '../errors.js';
import type { GuardLimits, Timers } from './transferGuard.js';

/** A waiting connection looks at the budget at least this often. */
export const RECHECK_MS = 250;
/** How far ahead of the budget's time line the connections may run: a short burst after a pause, no more. */
const BURST_SECONDS = 0.25;
/** Under a cap, a connection reads about this long of the whole budget at once (BodySink.readBytes)... */
const PIECE_SECONDS = 0.02;
/** ...and never less than this (a read per 16 KiB costs little; smaller ones would). */
const MIN_PIECE_BYTES = 16 * 1024;

/**
 * A reservation scheduler (GCRA, a token bucket's exact twin): each piece a connection received books
 * the next stretch of the budget's time line, and the connection reads on when its stretch comes. So
 * connections take turns, one after another, instead of all waking together when a shared bucket
 * refills and bursting.
 * @example
 * const budget = new RateBudget(5_000_000, REAL_TIMERS)
 * const readyAt = budget.reserve(chunk.byteLength) // read on at this time (now or later)
 * budget.setRate(undefined) // lifted
 */
export class RateBudget {
  #rate: number | undefined;
  /** When the bytes booked so far are paid for (ms, the timers' clock). */
  #booked: number;
  readonly #listeners = new Set<(change: RateChange) => void>();

  constructor(
    bytesPerSecond: number | undefined,
    private readonly timers: Timers,
  ) {
    this.#rate = checkRate(bytesPerSecond);
    this.#booked = timers.now();
  }

  /** The cap in bytes per second; undefined: none. */
  get bytesPerSecond(): number | undefined {
    return this.#rate;
  }

  now(): number {
    return this.timers.now();
  }

  /** Changes the cap (undefined lifts it); connections waiting on the budget look again at once. */
  setRate(bytesPerSecond: number | undefined): void {
    const rate = checkRate(bytesPerSecond);
    const now = this.timers.now();
    // What is booked but not yet due is paid at the new rate from now on.
    const change: RateChange = { at: now, factor: this.#rate === undefined || rate === undefined ? 0 : this.#rate / rate };
    this.#booked = now + Math.max(0, this.#booked - now) * change.factor;
    this.#rate = rate;
    for (const listener of [...this.#listeners]) listener(change);
  }

  /** Books `bytes` received; returns when the connection may read on (now or later, on the timers' clock). */
  reserve(bytes: number): number {
    const now = this.timers.now();
    if (this.#rate === undefined) return now;
    this.#booked = Math.max(this.#booked, now) + (bytes * 1000) / this.#rate;
    // Connections may run a short burst ahead of the time line, no more.
    return Math.max(now, this.#booked - BURST_SECONDS * 1000);
  }

  /** Calls `listener` whenever the rate changes; returns the unsubscribe. */
  onChange(listener: (change: RateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** A rate change: a time still to wait after `at` is multiplied by `factor` (0: lifted). */
export interface RateChange {
  at: number;
  factor: number;
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
 * when not, it calls `resume` once its booked time comes (rescaled when the rate changes, and looked
 * at least every RECHECK_MS, calling `tick` then, so the stall guard knows the pause is ours).
 * @example
 * const pacer = new Pacer(budget, timers, () => response.resume(), () => guard.arrived(0))
 * write(bytes) { ...; return pacer.take(bytes.length) && writerHasRoom }
 */
export class Pacer {
  #timer: unknown;
  #unsubscribe: (() => void) | undefined;
  #readyAt = 0;
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

  /**
   * The piece a connection should read at once under the cap: about {@link PIECE_SECONDS} of the whole
   * budget, so the bytes let in follow the cap closely; undefined without a cap (the transport's size).
   */
  readBytes(): number | undefined {
    const rate = this.budget?.bytesPerSecond;
    return rate === undefined ? undefined : Math.max(MIN_PIECE_BYTES, Math.round(rate * PIECE_SECONDS));
  }

  /** Counts bytes received; false: stop reading until `resume`. */
  take(bytes: number): boolean {
    if (this.budget === undefined || this.#disposed) return true;
    const readyAt = this.budget.reserve(bytes);
    if (this.paused) {
      this.#readyAt = Math.max(this.#readyAt, readyAt);
      return false;
    }
    if (readyAt <= this.timers.now()) return true;
    this.#readyAt = readyAt;
    this.#unsubscribe = this.budget.onChange((change) => {
      if (this.#readyAt > change.at) this.#readyAt = change.at + (this.#readyAt - change.at) * change.factor;
      this.#check();
    });
    this.#arm();
    return false;
  }

  dispose(): void {
    this.#disposed = true;
    this.timers.clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #arm(): void {
    this.timers.clearTimeout(this.#timer);
    this.#timer = this.timers.setTimeout(() => this.#check(), Math.min(RECHECK_MS, Math.max(0, this.#readyAt - this.timers.now())));
  }

  #check(): void {
    if (this.#disposed || !this.paused) return;
    this.tick();
    if (this.#readyAt > this.timers.now()) return this.#arm();
    this.timers.clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.resume();
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
