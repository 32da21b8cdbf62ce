/**
 * The updater, platform-neutral: wires the statechart to a store, the network, the host's hooks and the
 * event log, and gives the host a small promise-based API. `createModelUpdater` (Node) and the other
 * adapters call it with their platform.
 */
import { createActor, transition, type Actor, type ActorOptions, type InspectionEvent, type Observer } from 'xstate';
import { updaterMachine } from '../machines/updater.machine.js';
import type {
  DownloadProgress,
  InstalledVersion,
  SessionResult,
  Trigger,
  UpdaterConfig,
  UpdaterInput,
} from '../machines/types.js';
import { createCheckConditions } from './actors/checkConditions.js';
import { createCheckDiskSpace } from './actors/checkDiskSpace.js';
import { createCheckHealth } from './actors/checkHealth.js';
import { createDownloadVersion } from './actors/downloadVersion.js';
import { createFetchManifest } from './actors/fetchManifest.js';
import { createLoadModel } from './actors/loadModel.js';
import { createRestoreVersion } from './actors/restoreVersion.js';
import { createRunMigration } from './actors/runMigration.js';
import { createStageVersion } from './actors/stageVersion.js';
import { createSwitchActive } from './actors/switchActive.js';
import { createVerifyStaged } from './actors/verifyStaged.js';
import { fromErrorData, UpdateError } from './errors.js';
import type { EventLog } from './log/eventLog.js';
import { checkpointData, eventData, INIT_EVENT, isCheckpointable, replay, type UpdaterSnapshot } from './log/replay.js';
import { CHECKPOINT, lastCheckpoint } from './log/record.js';
import { recoveryEvents } from '../machines/recovery.js';
import { LoadedModels, type ModelLoader, type ModelRef } from './modelRef.js';
import type { GarbageReport, ModelStore } from './store.js';
import { validateOptions } from './options.js';
import { typedStore } from './typedStore.js';
import { SessionSpans, type TracerLike } from './telemetry.js';
import { logStats, type UpdateStats } from './log/stats.js';
import { nextCheckDelay, startupDelay } from './schedule.js';
import { resolvePolicy, type UpdatePolicy } from './policy.js';
export type { UpdatePolicy } from './policy.js';
import { statePath } from './statePath.js';
import { initialTrust } from './trust/acceptManifest.js';
import type { TrustStore } from './trust/trustStore.js';

/** Options every platform shares; each entry point adds where the models live (`dir` in Node). */
export interface UpdaterOptions<Handle = unknown> {
  /**
   * URL of the update service's manifest.json, or a list of mirrors tried in order (one that fails or
   * serves bad data is skipped). Needed to check; rollback and status work without it.
   */
  manifestUrl?: string | string[];
  /**
   * Ed25519 public keys (base64 of the raw 32 bytes, as in a `.pub` file from `model-updater keygen`)
   * a manifest must be signed with. A key rotation signed by them replaces them (kept in `trust.json`).
   */
  trustedKeys?: string[];
  /** How many distinct trusted keys must sign a manifest. Default 1. */
  threshold?: number;
  /** Accept unsigned manifests. Only allowed without trustedKeys; a warning in the log and the CLI. */
  allowUnsigned?: boolean;
  /** How far past its `expires` a signed manifest is still accepted, for clocks that run fast. Default 0. */
  clockSkewMs?: number;
  /** Headers for the manifest request (e.g. Authorization); none of them follow a redirect to another origin. */
  headers?: Record<string, string>;
  /**
   * Slow-retrieval defense for each file: `stallTimeoutMs` (no byte for this long; default 30 s) and
   * `minBytesPerSecond` averaged over `throughputWindowMs` (default 30 s). Either fails the attempt with
   * DOWNLOAD_STALLED, which is retried with back-off like a dropped connection.
   */
  download?: { stallTimeoutMs?: number; minBytesPerSecond?: number; throughputWindowMs?: number };
  /** The host app's version, matched against each model version's `requires.app` range; without it, ranges are not checked. */
  appVersion?: string;
  /** Release channel to follow. Default 'stable'. */
  channel?: string;
  policy?: UpdatePolicy;
  loader?: ModelLoader<Handle>;
  /** Complete versions kept on disk, the active one included. Default and minimum 2 (active + one for rollback). */
  keepVersions?: number;
  /** Bytes that retained versions beyond the previous one may use; shared files count once. Default unlimited. */
  maxRetainedBytes?: number;
  /**
   * Trial activation: a new version is on probation until the host calls confirm(), it loads successfully
   * `confirmAfterLoads` times (the load during the update counts; default 2), or it stays active
   * `confirmAfterMs` in one process (default 10 minutes). After `maxFailedStarts` starts that did not
   * reach a successful load (default 2), the previous version is restored and the build quarantined.
   */
  probation?: { confirmAfterLoads?: number; confirmAfterMs?: number; maxFailedStarts?: number };
  retry?: {
    /** Download attempts per session. Default 5. */
    maxDownloadAttempts?: number;
    /** Deferred checks per session when the service is down. Default 5. */
    maxCheckAttempts?: number;
    baseDelayMs?: number;
    maxDelayMs?: number;
    /** ky's quick retries of one manifest request. Default 2. */
    manifestRetries?: number;
  };
  /** Extra free space required, as a fraction of the download. Default 0.05. */
  diskMargin?: number;
  maxManifestBytes?: number;
  manifestTimeoutMs?: number;
  progressIntervalMs?: number;
  /** Records after which a settled state is written to the log as a checkpoint. Default 500. */
  checkpointEvery?: number;
  /** Timer source for back-off waits; pass xstate's SimulatedClock in tests. */
  clock?: ActorOptions<typeof updaterMachine>['clock'];
  /** An OpenTelemetry tracer (or anything shaped like one): a span per update session. */
  tracer?: TracerLike;
  /** Randomness for jitter (schedule, back-off). Default Math.random. */
  random?: () => number;
  /** Wall clock for timestamps and rates. Default Date.now. */
  now?: () => number;
  /** Inspection observer (for example `createBrowserInspector().inspect` from @statelyai/inspect). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

/** The Node entry's options: the shared ones plus the folder. */
export interface ModelUpdaterOptions<Handle = unknown> extends UpdaterOptions<Handle> {
  /** Folder for versions, staging and the event log. Created if missing. */
  dir: string;
}

export interface UpdaterEvents {
  /** The chart moved; `state` is the dotted state path, e.g. 'downloading.fetching'. */
  state: { state: string };
  'update-available': { version: string; notes: string | undefined };
  'update-not-available': { sessionId: string };
  progress: DownloadProgress;
  activated: { version: string; previous: string | null; model: ModelRef };
  'rolled-back': { version: string | null; from: string | null; cause: UpdateError | null };
  error: UpdateError;
}

/** What a check (or approve, or rollback) came to. */
export type UpdateResult =
  | SessionResult
  | { sessionId: string; outcome: 'awaiting-approval'; version: string | null; error: null }
  | { sessionId: string; outcome: 'deferred'; version: null; error: SessionResult['error'] };

export interface ModelUpdater<Handle = unknown> {
  /** Recovers state from the event log, loads the active model, then checks if the policy says so. */
  start(): Promise<void>;
  /** Checks for an update and runs it as the policy says. Concurrent calls share one session. */
  check(trigger?: Trigger): Promise<UpdateResult>;
  approve(): Promise<UpdateResult>;
  cancel(): void;
  /** Ends the active version's probation: the host has seen it work. */
  confirm(): void;
  /** Tells a download waiting for its conditions (network, power, idle) to look again now. */
  conditionsChanged(): void;
  /** Removes versions retention no longer keeps, leftovers of interrupted downloads, and unused files. */
  gc(): Promise<GarbageReport>;
  /** Outcomes, failure codes, download throughput, time in each state and sessions, from the log. */
  stats(): UpdateStats;
  /** Makes a retained version active again (the newest retained, or `to`). */
  rollback(to?: string): Promise<UpdateResult>;
  stop(): void;
  getSnapshot(): UpdaterSnapshot;
  subscribe(listener: (snapshot: UpdaterSnapshot) => void): () => void;
  on<E extends keyof UpdaterEvents>(event: E, listener: (payload: UpdaterEvents[E]) => void): () => void;
  /** The active version, with the folder to load it from; null before the first install. */
  readonly active: ModelRef | null;
  /** The host's handle of the active version, when a load hook is given. */
  readonly model: Handle | undefined;
  readonly log: EventLog;
}

/** States where nothing runs and the chart waits for a host event. */
export function isSettled(snapshot: UpdaterSnapshot): boolean {
  return ['idle', 'active', 'rolledBack', 'awaitingApproval'].some((state) => snapshot.matches(state as never));
}

/** Where an updater keeps its models and its log. */
export interface Platform {
  store: ModelStore;
  /** Takes the store's exclusive lock; resolves with its release. */
  lock?(): Promise<() => void>;
  /** This install's stable random id (created on first use), for staged rollouts. */
  installId?(): Promise<string>;
  /** Opens the event log (verifying it and cutting a torn tail). */
  openLog(now: () => number): EventLog | Promise<EventLog>;
  /** Keeps a rotated key set beside the log (Node: `<dir>/trust.json`). */
  trust?: TrustStore;
  /** Answers the manifest requests instead of the global fetch (the in-memory update service of `model-updater/testing`). */
  fetch?: typeof fetch;
}

/**
 * Creates an updater on a given platform; hosts call a platform's entry point such as createModelUpdater.
 * @example
 * const updater = createUpdater(options, { store, openLog: () => log })
 */
export function createUpdater<Handle = unknown>(options: UpdaterOptions<Handle>, platform: Platform): ModelUpdater<Handle> {
  const config = validateOptions(options);
  const policy = resolvePolicy(options.policy);
  const spans = options.tracer ? new SessionSpans(options.tracer) : null;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  // Whatever the adapter throws reaches the chart, the log and the host as an UpdateError.
  const store = typedStore(platform.store);
  const loader = options.loader ?? {};
  const models = new LoadedModels<Handle>(loader, (version) => store.versionPath(version));
  const listeners = new Map<keyof UpdaterEvents, Set<(payload: never) => void>>();
  let actor: Actor<typeof updaterMachine> | undefined;
  let log: EventLog | undefined;
  let restored = false;
  let journalFailure: UpdateError | undefined;

  const emit = <E extends keyof UpdaterEvents>(event: E, payload: UpdaterEvents[E]) => {
    for (const listener of listeners.get(event) ?? []) (listener as (p: UpdaterEvents[E]) => void)(payload);
  };

  const machine = updaterMachine.provide({
    actors: {
      fetchManifest: createFetchManifest({
        manifestUrl: options.manifestUrl ?? [],
        maxBytes: options.maxManifestBytes ?? 1024 * 1024,
        retries: options.retry?.manifestRetries ?? 2,
        timeoutMs: options.manifestTimeoutMs ?? 15_000,
        maxInPlaceRetryAfterMs: 5_000,
        allowUnsigned: options.allowUnsigned ?? false,
        clockSkewMs: options.clockSkewMs ?? 0,
        ...(options.headers ? { headers: options.headers } : {}),
        ...(platform.trust ? { trustStore: platform.trust } : {}),
        ...(platform.fetch ? { fetch: platform.fetch } : {}),
      }),
      checkDiskSpace: createCheckDiskSpace(store),
      downloadVersion: createDownloadVersion({
        store,
        manifestUrl: [options.manifestUrl ?? []].flat()[0] ?? '',
        progressIntervalMs: options.progressIntervalMs ?? 500,
        now,
        onProgress: (progress) => {
          emit('progress', progress);
          // A transfer still winding down after a stop must not reach the stopped chart.
          if (actor?.getSnapshot().status === 'active') actor.send({ type: 'PROGRESS', progress });
        },
      }),
      checkConditions: createCheckConditions(policy.downloadWhen, policy.avoidMeteredConnection),
      verifyStaged: createVerifyStaged(store),
      stageVersion: createStageVersion(store),
      runMigration: createRunMigration(loader, models),
      loadModel: createLoadModel(models),
      checkHealth: createCheckHealth(models),
      switchActive: createSwitchActive(store, models, config, now),
      restoreVersion: createRestoreVersion(store, models, now),
    },
  });

  /** Journals every event the chart receives, durably, before the chart acts on it. */
  const journal = (inspection: InspectionEvent) => {
    if (inspection.type !== '@xstate.event' || !actor || inspection.actorRef !== actor) return;
    const event = inspection.event;
    if (event.type === INIT_EVENT && restored) return;
    if (journalFailure) return;
    const current = event.type === INIT_EVENT ? undefined : actor.getSnapshot();
    const session =
      'sessionId' in event && typeof event.sessionId === 'string' ? event.sessionId : (current?.context.session?.id ?? null);
    try {
      durably(log!, event.type, session, eventData(event));
    } catch {
      // Without a durable record the chart must not go on: stop and report.
      queueMicrotask(() => {
        actor?.stop();
        emit('error', journalFailure!);
      });
    }
  };

  /** Appends a record; a failure (an fsync error included) is fatal, never retried, and typed. */
  const durably = (journal: EventLog, type: string, session: string | null, data: Record<string, unknown>) => {
    try {
      return journal.append(type, session, data);
    } catch (error) {
      journalFailure = new UpdateError(
        'STORAGE_FAILED',
        `Could not write the event log in ${store.location}: ${(error as Error).message}. The updater stopped; free space or fix permissions, then start it again.`,
        { cause: error },
      );
      throw journalFailure;
    }
  };

  const userInspect = options.inspect;
  const inspect = (event: InspectionEvent) => {
    journal(event);
    if (typeof userInspect === 'function') userInspect(event);
    else userInspect?.next?.(event);
  };

  /** Bounds start-up: once enough records follow the last checkpoint, a settled state is written as one. */
  let checkpointAt = -1;
  const maybeCheckpoint = (snapshot: UpdaterSnapshot) => {
    if (!log || journalFailure || !isCheckpointable(snapshot)) return;
    if (log.records().length - 1 - checkpointAt < (options.checkpointEvery ?? 500)) return;
    try {
      checkpointAt = durably(log, CHECKPOINT, null, checkpointData(snapshot)).seq;
    } catch {
      queueMicrotask(() => {
        actor?.stop();
        emit('error', journalFailure!);
      });
    }
  };

  let previous: UpdaterSnapshot | undefined;
  const onSnapshot = (snapshot: UpdaterSnapshot) => {
    const before = previous;
    previous = snapshot;
    maybeCheckpoint(snapshot);
    const session = snapshot.context.session;
    if (spans && session && (!before || statePath(before) !== statePath(snapshot))) spans.state(session.id, session.trigger, statePath(snapshot));
    if (!before || statePath(before) !== statePath(snapshot)) emit('state', { state: statePath(snapshot) });
    const { lastResult, candidate } = snapshot.context;
    if (candidate && before?.context.candidate?.version !== candidate.version && !snapshot.matches('checking')) {
      emit('update-available', { version: candidate.version, notes: candidate.notes });
    }
    if (!lastResult || lastResult === before?.context.lastResult) return;
    scheduleAfter(lastResult);
    spans?.end(lastResult);
    switch (lastResult.outcome) {
      case 'up-to-date':
        emit('update-not-available', { sessionId: lastResult.sessionId });
        break;
      case 'activated': {
        const active = snapshot.context.active!;
        queueMicrotask(armProbationTimer);
        emit('activated', { version: active.version, previous: before?.context.active?.version ?? null, model: models.ref(active) });
        break;
      }
      case 'rolled-back':
        emit('rolled-back', {
          version: snapshot.context.active?.version ?? null,
          from: snapshot.context.rollback?.from?.version ?? null,
          cause: lastResult.error ? fromErrorData(lastResult.error) : null,
        });
        break;
      case 'failed':
        if (lastResult.error) emit('error', fromErrorData(lastResult.error));
        break;
    }
  };

  let releaseLock: (() => void) | null = null;

  /** The actor for the state the log describes, after journaling and folding the recovery events. */
  const restoreActor = (journal: EventLog, input: UpdaterInput): Actor<typeof updaterMachine> => {
    const clock = options.clock ? { clock: options.clock } : {};
    let snapshot = replay(journal.records());
    restored = snapshot !== null;
    if (!snapshot) return createActor(machine, { input, inspect, ...clock });
    if (snapshot.status !== 'active') {
      throw new UpdateError('LOG_CORRUPT', `The event log in ${store.location} replays to an unusable state (${snapshot.status}). Run \`model-updater log --quarantine --dir <dir>\` to set it aside and start a new log; the installed models stay.`);
    }
    for (const event of recoveryEvents(snapshot, config)) {
      durably(journal, event.type, snapshot.context.session?.id ?? null, eventData(event));
      [snapshot] = transition(updaterMachine, snapshot, event);
    }
    // Restoring re-runs the invoked actor of the state the log ended in (every actor is idempotent).
    return createActor(machine, { input, snapshot: updaterMachine.getPersistedSnapshot(snapshot) as never, inspect, ...clock });
  };

  /** Ends probation after `confirmAfterMs` of the version being active in this process. */
  const timers = options.clock ?? {
    setTimeout: (fn: () => void, ms: number) => {
      const id = setTimeout(fn, ms);
      // Node: the timer must not keep the process alive. Browsers have no unref.
      (id as { unref?: () => void }).unref?.();
      return id;
    },
    clearTimeout: (id: unknown) => clearTimeout(id as NodeJS.Timeout),
  };
  let probationTimer: { version: string; id: unknown } | undefined;
  const disarmProbationTimer = () => {
    if (probationTimer) timers.clearTimeout(probationTimer.id as never);
    probationTimer = undefined;
  };
  const armProbationTimer = () => {
    const probation = actor?.getSnapshot().context.probation;
    if (!probation || probationTimer?.version === probation.version) return;
    disarmProbationTimer();
    const id = timers.setTimeout(() => {
      probationTimer = undefined;
      if (actor?.getSnapshot().context.probation?.version === probation.version) actor.send({ type: 'CONFIRM', reason: 'time' });
    }, options.probation?.confirmAfterMs ?? 10 * 60_000);
    probationTimer = { version: probation.version, id };
  };

  /** Background checks: one timer, re-armed each time a session ends (back-off after failures). */
  let scheduleTimer: unknown;
  let failedSessions = 0;
  const disarmSchedule = () => {
    if (scheduleTimer !== undefined) timers.clearTimeout(scheduleTimer as never);
    scheduleTimer = undefined;
  };
  const armSchedule = (trigger: Trigger, delay: number) => {
    disarmSchedule();
    scheduleTimer = timers.setTimeout(() => {
      scheduleTimer = undefined;
      void checkOnce(trigger).catch(() => undefined);
    }, delay);
  };
  const scheduleAfter = (result: SessionResult) => {
    if (!policy.schedule || !options.manifestUrl) return;
    failedSessions = result.outcome === 'failed' ? failedSessions + 1 : 0;
    armSchedule('scheduled', nextCheckDelay(policy.schedule, { failures: failedSessions, retryAfterMs: result.error?.retryAfterMs }, random()));
  };

  const running = (): Actor<typeof updaterMachine> => {
    if (journalFailure) throw journalFailure;
    if (!actor) throw new UpdateError('INVALID_ARGUMENT', 'The updater is not started: call and await start() first.');
    return actor;
  };

  /** Resolves when the chart settles after `sessionId` began (or at once if it is settled already). */
  const settled = (sessionId: string | null): Promise<UpdateResult> =>
    new Promise((resolve, reject) => {
      const current = running();
      const tryResolve = (snapshot: UpdaterSnapshot): boolean => {
        if (journalFailure) {
          reject(journalFailure);
          return true;
        }
        const { lastResult, session, candidate, error } = snapshot.context;
        if (snapshot.matches({ idle: 'deferred' })) {
          resolve({ sessionId: session?.id ?? '', outcome: 'deferred', version: null, error });
          return true;
        }
        if (!isSettled(snapshot)) return false;
        if (snapshot.matches('awaitingApproval')) {
          resolve({ sessionId: session?.id ?? '', outcome: 'awaiting-approval', version: candidate?.version ?? null, error: null });
          return true;
        }
        if (sessionId !== null && lastResult?.sessionId !== sessionId) return false;
        resolve(lastResult ?? { sessionId: sessionId ?? '', outcome: 'up-to-date', version: null, error: null });
        return true;
      };
      if (tryResolve(current.getSnapshot())) return;
      const subscription = current.subscribe({
        next: (snapshot) => {
          if (tryResolve(snapshot)) subscription.unsubscribe();
        },
        error: (error) => reject(error),
        // Stopped (by stop(), or because the log could not be written) before settling.
        complete: () => reject(journalFailure ?? new UpdateError('CANCELLED', 'The updater was stopped before the update finished; it resumes on the next start().')),
      });
    });

  const bootstrapTrust = initialTrust(options.trustedKeys ?? [], options.threshold ?? 1);
  /** The configured keys, or the rotated set kept in trust.json when it grew from the same configuration. */
  const startingTrust = async () => {
    const saved = await platform.trust?.read();
    return saved && saved.anchor === bootstrapTrust.anchor ? saved : bootstrapTrust;
  };

  const checkOnce = async (trigger: Trigger): Promise<UpdateResult> => {
    const current = running();
    if (!options.manifestUrl?.length) throw new UpdateError('INVALID_ARGUMENT', 'No manifestUrl was given, so there is nothing to check: pass the update service URL.');
    const snapshot = current.getSnapshot();
    const event = { type: 'CHECK' as const, sessionId: crypto.randomUUID(), at: now(), trigger, jitter: random() };
    // Busy: join the session in progress instead of starting a second one.
    if (!snapshot.can(event)) return settled(snapshot.context.session?.id ?? null);
    current.send(event);
    return settled(event.sessionId);
  };

  return {
    async start() {
      if (actor) return;
      await store.init();
      releaseLock = (await platform.lock?.()) ?? null;
      try {
        config.installId = (await platform.installId?.()) ?? null;
        log = await platform.openLog(now);
        checkpointAt = lastCheckpoint(log.records());
        // A folder installed before it had a log (or whose log was set aside) keeps its versions.
        const pointer = await store.readPointer();
        actor = restoreActor(log, { config, active: pointer?.active ?? null, retained: pointer?.retained ?? [], trust: await startingTrust() });
      } catch (error) {
        releaseLock?.();
        releaseLock = null;
        throw error;
      }
      actor.subscribe({ next: onSnapshot, error: (error) => emit('error', error instanceof UpdateError ? error : new UpdateError('UNKNOWN', String(error))) });
      actor.start();
      // The host configured other keys than the trust state grew from: start over from them (journaled).
      const configured = bootstrapTrust;
      if (actor.getSnapshot().context.trust.anchor !== configured.anchor) actor.send({ type: 'TRUST', trust: configured });
      // Journaled before the model loads: a start that dies loading it counts against a version on probation.
      actor.send({ type: 'STARTED', at: now() });
      if (journalFailure) throw journalFailure;
      // A restored switch or rollback decides which version is active: let it finish before loading one.
      const deciding = actor.getSnapshot();
      if (deciding.matches('rollingBack') || deciding.matches({ migrating: 'switching' })) await settled(deciding.context.session!.id);
      const active = actor.getSnapshot().context.active;
      if (active) {
        await models.load(active);
        actor.send({ type: 'LOADED', version: active.version });
      }
      armProbationTimer();
      if (!options.manifestUrl) return;
      if (policy.checkOnStart) {
        const delay = policy.schedule ? startupDelay(policy.schedule, random()) : 0;
        if (delay === 0) void checkOnce('startup').catch(() => undefined);
        else armSchedule('startup', delay);
      } else if (policy.schedule) {
        armSchedule('scheduled', nextCheckDelay(policy.schedule, { failures: 0 }, random()));
      }
    },
    async gc() {
      const { context } = running().getSnapshot();
      const keep = [context.active, ...context.retained].filter((v) => v !== null).map((v) => v.version);
      // An update in progress keeps its staging (a download, or one cancelled to resume later) and the
      // version folder it is installing: promoted before migrate, the switch points at it.
      const busy = !isSettled(running().getSnapshot()) && context.candidate ? [context.candidate.version] : [];
      return store.collectGarbage([...keep, ...busy], busy);
    },
    stats: () => logStats(running() && log!.records()),
    conditionsChanged() {
      running().send({ type: 'CONDITIONS_CHANGED' });
    },
    confirm() {
      const current = running();
      if (current.getSnapshot().context.probation) current.send({ type: 'CONFIRM', reason: 'host' });
    },
    check: (trigger = 'manual') => checkOnce(trigger),
    approve() {
      const current = running();
      const session = current.getSnapshot().context.session?.id ?? null;
      current.send({ type: 'APPROVE' });
      return settled(session);
    },
    cancel() {
      running().send({ type: 'CANCEL' });
    },
    rollback(to) {
      const current = running();
      const event = { type: 'ROLLBACK' as const, sessionId: crypto.randomUUID(), at: now(), ...(to === undefined ? {} : { to }) };
      if (!current.getSnapshot().can(event)) {
        const snapshot = current.getSnapshot();
        const kept = snapshot.context.retained.map((v) => v.version);
        const reason = !isSettled(snapshot)
          ? `an update is running (${statePath(snapshot)}); wait for it to finish`
          : to === undefined
            ? 'no previous version is retained'
            : `version ${to} is not retained (retained: ${kept.join(', ') || 'none'})`;
        return Promise.reject(new UpdateError('ROLLBACK_UNAVAILABLE', `Cannot roll back: ${reason}.`));
      }
      current.send(event);
      return settled(event.sessionId);
    },
    stop() {
      actor?.stop();
      log?.close();
      actor = undefined;
      log = undefined;
      disarmProbationTimer();
      disarmSchedule();
      releaseLock?.();
      releaseLock = null;
    },
    getSnapshot: () => running().getSnapshot(),
    subscribe(listener) {
      const subscription = running().subscribe(listener);
      return () => subscription.unsubscribe();
    },
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      set.add(listener as (payload: never) => void);
      listeners.set(event, set);
      return () => set.delete(listener as (payload: never) => void);
    },
    get active() {
      const active: InstalledVersion | null | undefined = actor?.getSnapshot().context.active;
      return active ? models.ref(active) : null;
    },
    get model() {
      const active = actor?.getSnapshot().context.active;
      return active ? models.handle(active.version) : undefined;
    },
    get log() {
      if (!log) throw new UpdateError('INVALID_ARGUMENT', 'The updater is not started: call and await start() first.');
      return log;
    },
  };
}
