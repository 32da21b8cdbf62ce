/**
 * The updater as a host sees it: its methods, its events, and what a check comes to.
 */
import type { Actor } from 'xstate';
import type { DownloadProgress, SessionResult, SkippedVersion, Trigger } from '../../machines/types.js';
import type { UpdaterMachine } from '../../machines/updater.machine.js';
import type { UpdateError } from './errors.js';
import type { EventLog } from './ports/eventLog.js';
import type { UpdaterSnapshot } from './log/replay.js';
import type { UpdateStats } from './log/stats.js';
import type { ModelRef } from './modelRef.js';
import type { GarbageReport } from './ports/modelStore.js';

/**
 * What the host hears through `on(...)`: what the running updater does now. The outcomes come from the
 * chart's emitted events (`UpdaterEmitted`), so replaying the log at start() repeats none of them.
 */
export interface UpdaterEvents {
  /** The chart moved; `state` is the dotted state path, e.g. 'downloading.fetching'. Not sent for the state start() restores. */
  state: { state: string };
  /** `skipped`: newer versions on offer this host cannot run (their `requires`), when there are any. */
  /**
   * `size`: bytes of the version's files; `fetchBytes`: the bytes its update will fetch (content and
   * chunks the device holds are copied, not fetched), estimated by the check; absent when not estimated.
   */
  'update-available': { version: string; notes: string | undefined; size: number; fetchBytes?: number; skipped?: SkippedVersion[] };
  'update-not-available': { sessionId: string; skipped?: SkippedVersion[] };
  /** activation 'next-start': a version was downloaded, verified and staged; the next start() (or applyStaged()) switches to it. */
  'update-downloaded': { version: string };
  progress: DownloadProgress;
  activated: { version: string; previous: string | null; model: ModelRef };
  'rolled-back': { version: string | null; from: string | null; cause: UpdateError | null };
  error: UpdateError;
}

export type UpdaterActor = Actor<UpdaterMachine>;

/** Ends a subscription: call it, or call its `unsubscribe()` (the shape of an XState subscription). */
export type Unsubscribe = (() => void) & { unsubscribe(): void };

/**
 * Wraps an ending function as an `Unsubscribe`.
 * @example
 * return unsubscriber(() => listeners.delete(listener))
 */
export function unsubscriber(end: () => void): Unsubscribe {
  return Object.assign(() => end(), { unsubscribe: () => end() });
}

/**
 * What a check (or approve, or rollback) came to. A check's result carries `skipped` when newer versions
 * on offer were left out because this host cannot run them (`requires`), each with its reason.
 */
export type UpdateResult = (
  | SessionResult
  | { sessionId: string; outcome: 'awaiting-approval'; version: string | null; error: null }
  | { sessionId: string; outcome: 'deferred'; version: null; error: SessionResult['error'] }
) & { skipped?: SkippedVersion[] };

/** How a check runs. */
export interface CheckOptions {
  /**
   * Only look: report the version on offer (outcome `'available'`) without downloading it or leaving an
   * approval pending, whatever the approval policy. The CLI's `check` does this.
   */
  look?: boolean;
}

export interface ModelUpdater<Handle = unknown> {
  /** Recovers state from the event log, loads the active model, then checks if the policy says so. */
  start(): Promise<void>;
  /**
   * Checks for an update and runs it as the policy says (`{ look: true }`: only reports it). Concurrent
   * calls share one session.
   */
  check(trigger?: Trigger, options?: CheckOptions): Promise<UpdateResult>;
  approve(): Promise<UpdateResult>;
  cancel(): void;
  /** Ends the active version's probation: the host has seen it work. */
  confirm(): void;
  /**
   * Changes the bandwidth cap (`download.maxBytesPerSecond`), one budget shared by every connection;
   * `undefined` lifts it. A download in progress follows the new rate within a second. Throws
   * INVALID_ARGUMENT for anything but a positive number or undefined.
   * @example
   * updater.setMaxBytesPerSecond(500_000) // a call started: leave the link to it
   * updater.setMaxBytesPerSecond(undefined) // the call ended
   */
  setMaxBytesPerSecond(bytesPerSecond: number | undefined): void;
  /** The bandwidth cap now, in bytes per second; undefined: none. */
  readonly maxBytesPerSecond: number | undefined;
  /** Tells a download waiting for its conditions (network, power, idle) to look again now. */
  conditionsChanged(): void;
  /** Removes versions retention no longer keeps, leftovers of interrupted downloads, and unused files. */
  gc(): Promise<GarbageReport>;
  /** Outcomes, failure codes, download throughput, time in each state and sessions, from the log. */
  stats(): UpdateStats;
  /**
   * Switches to the version a 'next-start' check staged, now (migrate, load, healthCheck, switch, or
   * rollback as usual). After a start() that switched to it already, resolves with that result. Rejects
   * with INVALID_ARGUMENT when nothing is staged.
   */
  applyStaged(): Promise<UpdateResult>;
  /** Makes a retained version active again (the newest retained, or `to`). */
  rollback(to?: string): Promise<UpdateResult>;
  /**
   * Releases a version a rollback quarantined (every build of it), so checks offer it again; journaled.
   * Throws INVALID_ARGUMENT when `version` is not quarantined.
   * @example
   * updater.release('1.2.0') // after the publisher fixed what made 1.2.0 fail here
   */
  release(version: string): void;
  stop(): void;
  /**
   * The chart's snapshot. Before start() it is the chart's first snapshot for the options given (nothing
   * installed is read yet); after stop() the one it stopped in.
   */
  getSnapshot(): UpdaterSnapshot;
  /**
   * Calls `listener` with every snapshot from now on (the updater must be started). Returns a
   * subscription as an XState actor does: `sub.unsubscribe()`; calling `sub()` works too.
   */
  subscribe(listener: (snapshot: UpdaterSnapshot) => void): Unsubscribe;
  /**
   * Listens to one host event. Events report what the running updater does now: restarting on a log
   * whose last session activated, rolled back or failed emits none of them again.
   */
  on<E extends keyof UpdaterEvents>(event: E, listener: (payload: UpdaterEvents[E]) => void): Unsubscribe;
  /**
   * The XState actor running the chart, for inspection (`actor.system`, `actor.on('activated', ...)` for
   * the chart's emitted events); undefined before start() and after stop(). Send events through the
   * updater's methods, not to the actor.
   */
  readonly actor: UpdaterActor | undefined;
  /** The active version, with the folder to load it from; null before the first install. */
  readonly active: ModelRef | null;
  /** The host's handle of the active version, when a load hook is given. */
  readonly model: Handle | undefined;
  readonly log: EventLog;
}

/** States where nothing runs and the chart waits for a host event (tagged `settled`). */
export function isSettled(snapshot: UpdaterSnapshot): boolean {
  return snapshot.hasTag('settled');
}
