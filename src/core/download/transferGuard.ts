/**
 * The slow-retrieval defense of one transfer (TUF's slow-retrieval and endless-data attacks):
 * - the response head must arrive within `headersTimeoutMs`, one deadline that bytes do not move;
 * - in the body, no byte for `stallTimeoutMs` fails it;
 * - fewer than `minBytesPerSecond` over a sliding `throughputWindowMs` fails it, counted on bytes as
 *   they arrive (not as they reach the disk, which batches them).
 * Every failure is DOWNLOAD_STALLED (retried, resuming what arrived). Time comes from injected timers,
 * so tests drive minutes with a simulated clock.
 */
import { UpdateError } from '../errors.js';
import { headersTimedOut, stalled, tooSlow } from './downloadErrors.js';
import { systemTimers, type TimerSource } from '../backgroundTimers.js';

/** Per-file limits of a download (`download` in the updater's options). */
export interface DownloadLimits {
  /** The response head must be complete within this; bytes of it do not extend it. Default 30 000 ms. */
  headersTimeoutMs?: number;
  /** No body byte for this long fails the attempt with DOWNLOAD_STALLED. Default 30 000 ms. */
  stallTimeoutMs?: number;
  /** Below this average over `throughputWindowMs`, the attempt fails with DOWNLOAD_STALLED. 0: no minimum. Default 1024 B/s. */
  minBytesPerSecond?: number;
  /** The sliding window the average is taken over. Default 60 000 ms. */
  throughputWindowMs?: number;
  /**
   * Connections a large file is fetched over at once, by ranges, when the server honours Range and the
   * platform's staging writes at any offset (Node, OPFS). 1: always one request. Default 4.
   */
  connections?: number;
  /**
   * The bandwidth cap of the whole update, in bytes per second, shared by all its connections;
   * undefined (default): none. Change it while a download runs with `updater.setMaxBytesPerSecond`.
   */
  maxBytesPerSecond?: number;
}

/** The limits of one connection's transfer guard. */
export type GuardLimits = Required<Omit<DownloadLimits, 'connections' | 'maxBytesPerSecond'>>;

/** Connections per file when the options say nothing. */
export const DEFAULT_CONNECTIONS = 4;

/**
 * `download.connections`, checked.
 * @example
 * resolveConnections({ connections: 2 }) // 2
 */
export function resolveConnections(limits: DownloadLimits = {}): number {
  const value = limits.connections;
  if (value === undefined) return DEFAULT_CONNECTIONS;
  if (!(Number.isSafeInteger(value) && value >= 1 && value <= 64)) {
    throw new UpdateError('INVALID_ARGUMENT', `download.connections must be a whole number from 1 to 64, got ${String(value)}.`);
  }
  return value;
}

export const DEFAULT_LIMITS: GuardLimits = {
  headersTimeoutMs: 30_000,
  stallTimeoutMs: 30_000,
  // 50 times below a slow but honest 50 KB/s link; a server trickling a byte every 2 s fails after a minute.
  minBytesPerSecond: 1024,
  throughputWindowMs: 60_000,
};

/** Timer source: the real one, or a simulated clock (xstate's SimulatedClock plus its now()). */
/** The updater's timer source plus the time the guards measure rates with. */
export interface Timers extends TimerSource {
  now(): number;
}

export const REAL_TIMERS: Timers = { ...systemTimers, now: () => Date.now() };

/** The window is kept as this many buckets: it slides by a tenth of its length. */
const BUCKETS = 10;

/**
 * Resolves defaults and refuses nonsense.
 * @example
 * resolveLimits({ minBytesPerSecond: 0 }) // no minimum, other defaults
 */
export function resolveLimits(limits: DownloadLimits = {}): GuardLimits {
  const resolved = { ...DEFAULT_LIMITS };
  for (const [name, value] of Object.entries(limits) as Array<[keyof GuardLimits, number | undefined]>) {
    if (value === undefined || !(name in DEFAULT_LIMITS)) continue;
    const zeroAllowed = name === 'minBytesPerSecond';
    if (!(typeof value === 'number' && Number.isFinite(value) && (value > 0 || (zeroAllowed && value === 0)))) {
      throw new UpdateError('INVALID_ARGUMENT', `download.${name} must be a positive number of ${name.endsWith('Ms') ? 'milliseconds' : 'bytes per second'}, got ${String(value)}.`);
    }
    resolved[name] = value;
  }
  return resolved;
}

/**
 * @example
 * const guard = new TransferGuard(url, resolveLimits(), REAL_TIMERS, (error) => abort(error))
 * guard.startHead(); const response = await get(); guard.headArrived(); ... guard.startBody(); ... guard.arrived(n); ... guard.dispose()
 */
export class TransferGuard {
  #headTimer: unknown;
  #stallTimer: unknown;
  #tickTimer: unknown;
  #lastArrival = 0;
  #bodyStart = 0;
  #current = 0;
  readonly #buckets: number[] = [];
  #done = false;

  constructor(
    private readonly url: URL,
    private readonly limits: GuardLimits,
    private readonly timers: Timers,
    private readonly onTrip: (error: UpdateError) => void,
  ) {}

  /** The request is sent: the head's one deadline starts. */
  startHead(): void {
    const ms = this.limits.headersTimeoutMs;
    this.#headTimer = this.timers.setTimeout(() => this.#trip(headersTimedOut(this.url, ms)), ms);
  }

  /** The head is in: its deadline is met. */
  headArrived(): void {
    this.timers.clearTimeout(this.#headTimer);
  }

  /** The body starts: the stall and throughput guards take over. */
  startBody(): void {
    this.headArrived();
    if (this.#done) return;
    this.#bodyStart = this.#lastArrival = this.timers.now();
    this.#armStall(this.limits.stallTimeoutMs);
    if (this.limits.minBytesPerSecond > 0) this.#armTick();
  }

  /** Bytes arrived (called for every chunk: two additions and a clock read). */
  arrived(bytes: number): void {
    this.#lastArrival = this.timers.now();
    this.#current += bytes;
  }

  dispose(): void {
    this.#done = true;
    this.timers.clearTimeout(this.#headTimer);
    this.timers.clearTimeout(this.#stallTimer);
    this.timers.clearTimeout(this.#tickTimer);
  }

  /** One timer for the stall, not one per chunk: when it fires early (bytes came since), it waits the rest. */
  #armStall(ms: number): void {
    this.#stallTimer = this.timers.setTimeout(() => {
      const idle = this.timers.now() - this.#lastArrival;
      const limit = this.limits.stallTimeoutMs;
      if (idle >= limit) this.#trip(stalled(this.url, limit));
      else this.#armStall(limit - idle);
    }, ms);
  }

  #armTick(): void {
    const { throughputWindowMs: windowMs, minBytesPerSecond: min } = this.limits;
    this.#tickTimer = this.timers.setTimeout(() => {
      if (this.#done) return;
      this.#buckets.push(this.#current);
      this.#current = 0;
      if (this.#buckets.length > BUCKETS) this.#buckets.shift();
      // Judged only once a whole window of the body has passed.
      if (this.#buckets.length === BUCKETS && this.timers.now() - this.#bodyStart >= windowMs) {
        const bytes = this.#buckets.reduce((sum, n) => sum + n, 0);
        const rate = Math.round((bytes * 1000) / windowMs);
        if (rate < min) return this.#trip(tooSlow(this.url, rate, windowMs, min));
      }
      this.#armTick();
    }, windowMs / BUCKETS);
  }

  #trip(error: UpdateError): void {
    if (this.#done) return;
    this.dispose();
    this.onTrip(error);
  }
}
