/**
 * The updater, platform-neutral: wires the statechart to a store, the network, the host's hooks and the
 * event log, and gives the host a small promise-based API. `createModelUpdater` (Node) and the other
 * adapters call it with their platform.
 */
import { createActor, initialTransition, transition, type Actor, type InspectionEvent } from 'xstate';
import { recoveryEvents } from '../../machines/recovery.js';
import { skippedVersions } from '../../machines/selectCandidate.js';
import type { InstalledVersion, SessionResult, Trigger, TrustState, UpdaterInput } from '../../machines/types.js';
import { updaterMachine } from '../../machines/updater.machine.js';
import { BackgroundTimers } from './backgroundTimers.js';
import { hookDeadlines } from './hookDeadline.js';
import { UpdateError } from './errors.js';
import { hostEvent } from './hostEvents.js';
import { Journal } from './log/journal.js';
import { CHECKPOINT, META_PREFIX } from './log/record.js';
import { headOf, missingTail, type LogHead } from './log/logAnchor.js';
import { INIT_EVENT, replay, type UpdaterSnapshot } from './log/replay.js';
import { logStats } from './log/stats.js';
import { LoadedModels } from './modelRef.js';
import { isSettled, unsubscriber, type ModelUpdater, type UpdateResult, type UpdaterEvents } from './updaterApi.js';
import { validateOptions } from './validateOptions.js';
import { resolvePolicy } from './updatePolicy.js';
import { downloadTimers, provideActors } from './provideActors.js';
import { RateBudget } from './download/rateBudget.js';
import { nextCheckDelay, startupDelay } from './schedule.js';
import { statePath } from './statePath.js';
import { SessionSpans } from './telemetry.js';
import { initialTrust } from './trust/acceptManifest.js';
import { TrustKeeper, trustOf } from './trust/trustKeeper.js';
import type { SavedTrust } from './ports/trustStore.js';
import type { ActivePointer } from './ports/modelStore.js';
import { typedStore } from './typedStore.js';
import { writeAheadStore } from './log/writeAhead.js';
import type { Platform, UpdaterOptions } from './updaterOptions.js';

export * from './updaterOptions.js';
export * from './updaterApi.js';
export type { UpdatePolicy } from './updatePolicy.js';

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
  // Irreversible store calls wait for the log to be durable first (the write-ahead rule, log/writeAhead.ts).
  const store = writeAheadStore(typedStore(platform.store), () => journal?.log.flush?.());
  const models = new LoadedModels<Handle>(options.loader ?? {}, (version) => store.versionPath(version), hookDeadlines(options.hookTimeouts, options.clock));
  const listeners = new Map<keyof UpdaterEvents, Set<(payload: never) => void>>();
  let actor: Actor<typeof updaterMachine> | undefined;

  const emit = <E extends keyof UpdaterEvents>(event: E, payload: UpdaterEvents[E]) => {
    for (const listener of listeners.get(event) ?? []) (listener as (p: UpdaterEvents[E]) => void)(payload);
  };

  const timers = new BackgroundTimers(options.clock);
  let journal: Journal | undefined;
  let restored = false;

  /** The log's last record, made durable first: what an anchor written outside the log names. */
  const logHead = async (): Promise<LogHead | null> => {
    const log = journal?.log;
    if (!log) return null;
    const head = headOf(log.records());
    await log.flush?.();
    return head;
  };
  /** The one writer of the trust state kept outside the log (and of its chain-end anchor); one per run. */
  let keeper = new TrustKeeper(platform.trust, logHead);

  // One bandwidth budget for every connection of every download of this updater; the host moves it.
  const budget = new RateBudget(options.download?.maxBytesPerSecond, downloadTimers(options, now));
  const machine = provideActors({
    budget,
    options,
    platform,
    store,
    models,
    config,
    policy,
    now,
    saveTrust: (trust) => keeper.save(trust),
    logHead,
    onProgress: (progress) => {
      emit('progress', progress);
      // A transfer still winding down after a stop must not reach the stopped chart.
      if (actor?.getSnapshot().status === 'active') actor.send({ type: 'PROGRESS', progress });
    },
  });

  /** Without a durable record the chart must not go on: stop and report. */
  const haltOnJournalFailure = () =>
    queueMicrotask(() => {
      actor?.stop();
      emit('error', journal!.failure!);
    });

  /** Every event the chart receives is journaled before the chart acts on it; then the host's observer. */
  const inspect = (inspection: InspectionEvent) => {
    if (inspection.type === '@xstate.event' && actor && inspection.actorRef === actor && journal && !journal.failure) {
      const { event } = inspection;
      const restart = event.type === INIT_EVENT && restored;
      if (!restart && !journal.record(event, event.type === INIT_EVENT ? undefined : actor.getSnapshot())) haltOnJournalFailure();
    }
    const user = options.inspect;
    if (typeof user === 'function') user(inspection);
    else user?.next?.(inspection);
  };

  /**
   * Follows the chart's snapshots: checkpoints, spans, the `state` event and what follows a session's end.
   * `previous` starts at the snapshot the log restored, so what the log already holds is not news.
   */
  let previous: UpdaterSnapshot;
  const onSnapshot = (snapshot: UpdaterSnapshot) => {
    const before = previous;
    previous = snapshot;
    if (journal) {
      const records = journal.log.records();
      const last = records[records.length - 1];
      if (!journal.checkpoint(snapshot)) haltOnJournalFailure();
      // A checkpoint was chained in: anchor the log's new end outside it too (best effort; an older anchor still holds).
      const written = journal.log.records();
      const head = written[written.length - 1];
      if (head && head !== last && head.type === CHECKPOINT) void keeper.anchor().catch(() => undefined);
    }
    if (statePath(before) !== statePath(snapshot)) {
      const session = snapshot.context.session;
      if (spans && session) spans.state(session.id, session.trigger, statePath(snapshot));
      emit('state', { state: statePath(snapshot) });
    }
    const { lastResult } = snapshot.context;
    if (!lastResult || lastResult === before.context.lastResult) return;
    scheduleAfter(lastResult);
    spans?.end(lastResult);
    if (lastResult.outcome === 'activated') queueMicrotask(armProbationTimer);
  };

  let releaseLock: (() => void) | null = null;

  /** The actor for the state the log describes, after journaling and folding the recovery events. */
  const restoreActor = (input: UpdaterInput): Actor<typeof updaterMachine> => {
    const clock = options.clock ? { clock: options.clock } : {};
    let snapshot = replay(journal!.log.records());
    restored = snapshot !== null;
    if (!snapshot) return createActor(machine, { input, inspect, ...clock });
    if (snapshot.status !== 'active') {
      throw new UpdateError('LOG_CORRUPT', `The event log in ${store.location} replays to an unusable state (${snapshot.status}). Run \`model-updater log --quarantine --dir <dir>\` to set it aside and start a new log; the installed models stay.`);
    }
    for (const event of recoveryEvents(snapshot, config)) {
      journal!.appendEvent(event, snapshot.context.session?.id ?? null);
      [snapshot] = transition(updaterMachine, snapshot, event);
    }
    // Restoring re-runs the invoked actor of the state the log ended in (every actor is idempotent).
    return createActor(machine, { input, snapshot: updaterMachine.getPersistedSnapshot(snapshot) as never, inspect, ...clock });
  };

  /** Ends probation after `confirmAfterMs` of the version being active in this process. */
  let probationArmedFor: string | undefined;
  const armProbationTimer = () => {
    const probation = actor?.getSnapshot().context.probation;
    if (!probation || probationArmedFor === probation.version) return;
    probationArmedFor = probation.version;
    timers.set('probation', options.probation?.confirmAfterMs ?? 10 * 60_000, () => {
      probationArmedFor = undefined;
      if (actor?.getSnapshot().context.probation?.version === probation.version) actor.send({ type: 'CONFIRM', reason: 'time' });
    });
  };

  /** Background checks: one timer, re-armed each time a session ends (back-off after failures). */
  let failedSessions = 0;
  const armSchedule = (trigger: Trigger, delay: number) =>
    timers.set('check', delay, () => void checkOnce(trigger).catch(() => undefined));
  const scheduleAfter = (result: SessionResult) => {
    if (!policy.schedule || !options.manifestUrl) return;
    failedSessions = result.outcome === 'failed' ? failedSessions + 1 : 0;
    armSchedule('scheduled', nextCheckDelay(policy.schedule, { failures: failedSessions, retryAfterMs: result.error?.retryAfterMs }, random()));
  };

  const running = (): Actor<typeof updaterMachine> => {
    if (journal?.failure) throw journal.failure;
    if (!actor) throw new UpdateError('INVALID_ARGUMENT', 'The updater is not started: call and await start() first.');
    return actor;
  };

  /** Resolves when the chart settles after `sessionId` began (or at once if it is settled already). */
  const settled = (sessionId: string | null): Promise<UpdateResult> =>
    new Promise((resolve, reject) => {
      const current = running();
      const tryResolve = (snapshot: UpdaterSnapshot): boolean => {
        if (journal?.failure) {
          reject(journal.failure);
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
        complete: () => reject(journal?.failure ?? new UpdateError('CANCELLED', 'The updater was stopped before the update finished; it resumes on the next start().')),
      });
    });

  const bootstrapTrust = initialTrust(options.trustedKeys ?? [], options.threshold ?? 1);
  /** Before start(): the chart's first snapshot for these options (the store is not read yet). */
  const initialSnapshot = () => initialTransition(updaterMachine, { config, active: null, retained: [], trust: bootstrapTrust })[0];
  /** After stop(): the snapshot the chart stopped in. */
  let stoppedIn: UpdaterSnapshot | undefined;
  // An updater with no manifest URL and no keys (the CLI's rollback, status, gc) checks nothing: it must
  // not replace the trust state with its empty configuration.
  const checksManifests = [options.manifestUrl ?? []].flat().length > 0 || (options.trustedKeys?.length ?? 0) > 0;
  /** The configured keys, or the trust state kept in trust.json when it grew from the same configuration. */
  const startingTrust = (saved: SavedTrust | null): TrustState =>
    saved && (saved.anchor === bootstrapTrust.anchor || !checksManifests) ? trustOf(saved) : bootstrapTrust;
  /** Whether the kept trust state is ahead of the log's: a later chained rotation, or a higher serial. */
  const aheadOf = (saved: TrustState, held: TrustState): boolean => {
    if (saved.anchor !== held.anchor) return false;
    const [savedRotation, heldRotation] = [saved.rotation ?? 0, held.rotation ?? 0];
    if (savedRotation !== heldRotation) return savedRotation > heldRotation;
    return (saved.serial ?? -1) > (held.serial ?? -1);
  };

  /**
   * A folder with nothing installed (no pointer, and a log that names no active version) takes the model
   * the app ships as its active version, in place: its files are described once and recorded in the
   * pointer, so readers, `status` and later starts know it without the option. Journaled first (audit).
   */
  const adoptBundled = async (): Promise<Pick<ActivePointer, 'active' | 'retained'> | null> => {
    const bundled = options.bundled;
    if (!bundled || replay(journal!.log.records())?.context.active) return null;
    if (!platform.describeBundled) throw new UpdateError('INVALID_ARGUMENT', 'This platform cannot use a bundled model: leave out the bundled option.');
    const files = await platform.describeBundled(bundled.path);
    const active: InstalledVersion = { version: bundled.version, files, bundledPath: bundled.path };
    journal!.append(`${META_PREFIX}bundled`, null, { version: bundled.version, path: bundled.path });
    await store.writePointer({ schemaVersion: 1, active, retained: [], switchedAt: new Date(now()).toISOString() });
    return { active, retained: [] };
  };

  /** What a check result says about versions this host cannot run (only when there are some). */
  const withSkipped = (result: UpdateResult): UpdateResult => {
    const skipped = skippedNow();
    return skipped.length ? { ...result, skipped } : result;
  };
  const skippedNow = () => {
    const context = actor?.getSnapshot().context;
    return context?.manifest ? skippedVersions(context.manifest.body, context.config, context.active) : [];
  };

  const checkOnce = async (trigger: Trigger, look = false): Promise<UpdateResult> => {
    const current = running();
    if (!options.manifestUrl?.length) throw new UpdateError('INVALID_ARGUMENT', 'No manifestUrl was given, so there is nothing to check: pass the update service URL.');
    const snapshot = current.getSnapshot();
    const stageOnly = options.activation === 'next-start' && !look ? { stageOnly: true } : {};
    const event = { type: 'CHECK' as const, sessionId: crypto.randomUUID(), at: now(), trigger, jitter: random(), ...stageOnly, ...(look ? { look: true } : {}) };
    // Busy: join the session in progress instead of starting a second one.
    if (!snapshot.can(event)) return settled(snapshot.context.session?.id ?? null).then(withSkipped);
    current.send(event);
    return settled(event.sessionId).then(withSkipped);
  };

  /** The switch to the staged version this run's start() made, which applyStaged() then reports. */
  let appliedAtStart: Promise<UpdateResult> | null = null;
  /** Sends APPLY_STAGED when the chart can take it: a version is staged and nothing runs. */
  const applyStagedNow = (): Promise<UpdateResult> | null => {
    const current = running();
    const event = { type: 'APPLY_STAGED' as const, sessionId: crypto.randomUUID(), at: now() };
    if (!current.getSnapshot().can(event)) return null;
    current.send(event);
    return settled(event.sessionId);
  };

  return {
    async start() {
      if (actor) return;
      let saved: TrustState | null = null;
      await store.init();
      releaseLock = (await platform.lock?.()) ?? null;
      keeper = new TrustKeeper(platform.trust, logHead);
      try {
        config.installId = (await platform.installId?.()) ?? null;
        journal = new Journal(await platform.openLog(now), store.location, options.checkpointEvery ?? 500);
        // A folder installed before it had a log (or whose log was set aside) keeps its versions.
        const pointer = await store.readPointer();
        const kept = await keeper.read();
        // The log must reach the ends anchored outside it; checked before anything is appended.
        const damage = missingTail(journal.log.records(), [
          pointer?.logHead && { head: pointer.logHead, where: 'the active pointer' },
          kept?.logHead && { head: kept.logHead, where: 'the trust state kept beside it' },
        ]);
        if (damage) {
          throw new UpdateError(
            'LOG_CORRUPT',
            `The event log in ${store.location} ${damage}. Nothing was changed. Run \`model-updater log --quarantine --dir <dir>\` to set it aside and start a new log; the installed models, the trusted keys and the anti-rollback serial are kept.`,
          );
        }
        saved = kept && trustOf(kept);
        const installed = pointer ?? (await adoptBundled());
        actor = restoreActor({ config, active: installed?.active ?? null, retained: installed?.retained ?? [], trust: startingTrust(kept) });
      } catch (error) {
        journal?.log.close();
        journal = undefined;
        actor = undefined;
        keeper.close();
        releaseLock?.();
        releaseLock = null;
        throw error;
      }
      previous = actor.getSnapshot();
      actor.subscribe({ next: onSnapshot, error: (error) => emit('error', error instanceof UpdateError ? error : new UpdateError('UNKNOWN', String(error))) });
      // Outcomes are news only when the running chart reaches them: replaying the log emits nothing.
      const started = actor;
      started.on('*', (emitted) => {
        const [name, payload] = hostEvent(emitted, started.getSnapshot(), (installed) => models.ref(installed), skippedNow);
        emit(name, payload as never);
      });
      actor.start();
      // The host configured other keys than the trust state grew from: start over from them (journaled).
      // The trust state kept outside the log wins where it is ahead: a log cut back to an earlier record,
      // or set aside, must not lower the anti-rollback serial (journaled as a TRUST event).
      const configured = bootstrapTrust;
      const held = actor.getSnapshot().context.trust;
      if (checksManifests && held.anchor !== configured.anchor) actor.send({ type: 'TRUST', trust: { ...configured, serial: saved?.serial ?? null } });
      else if (saved && aheadOf(saved, held)) actor.send({ type: 'TRUST', trust: saved });
      // Journaled before the model loads: a start that dies loading it counts against a version on probation.
      actor.send({ type: 'STARTED', at: now() });
      if (journal.failure) throw journal.failure;
      // A restored switch or rollback decides which version is active: let it finish before loading one.
      const deciding = actor.getSnapshot();
      if (deciding.hasTag('decidingActive')) await settled(deciding.context.session!.id);
      // A version staged by an earlier run (activation 'next-start') becomes active now, before any loads.
      if (options.applyStagedOnStart ?? options.activation === 'next-start') {
        appliedAtStart = applyStagedNow();
        if (appliedAtStart) await appliedAtStart;
      }
      const active = actor.getSnapshot().context.active;
      if (active) {
        // The bundled model is the app's own folder, outside the store: the store has nothing to check there.
        if (active.bundledPath === undefined) await store.checkVersion?.(active.version);
        await models.load(active);
        actor.send({ type: 'LOADED', version: active.version });
      }
      armProbationTimer();
      if (!options.manifestUrl) return;
      if (policy.checkOnStart) {
        // A folder with nothing to run checks at once; one with a model spreads its check (see SchedulePolicy).
        const waits = policy.schedule !== null && (active !== null || policy.startupDelayWhenEmpty);
        const delay = waits ? startupDelay(policy.schedule!, random()) : 0;
        if (delay === 0) void checkOnce('startup').catch(() => undefined);
        else armSchedule('startup', delay);
      } else if (policy.schedule) {
        armSchedule('scheduled', nextCheckDelay(policy.schedule, { failures: 0 }, random()));
      }
    },
    async gc() {
      const { context } = running().getSnapshot();
      // A staged version waits in its folder for the next start: it is kept too.
      const keep = [context.active, ...context.retained, context.staged ?? null].filter((v) => v !== null).map((v) => v.version);
      // An update in progress keeps its staging (a download, or one cancelled to resume later) and the
      // version folder it is installing: promoted before migrate, the switch points at it.
      const busy = !isSettled(running().getSnapshot()) && context.candidate ? [context.candidate.version] : [];
      const report = await store.collectGarbage([...keep, ...busy], busy);
      // Files left the disk: the audit trail says which (a bookkeeping record; replay skips it).
      journal?.append(`${META_PREFIX}gc`, null, { ...report });
      return report;
    },
    stats: () => logStats(running() && journal!.log.records()),
    setMaxBytesPerSecond(bytesPerSecond) {
      budget.setRate(bytesPerSecond);
    },
    get maxBytesPerSecond() {
      return budget.bytesPerSecond;
    },
    conditionsChanged() {
      running().send({ type: 'CONDITIONS_CHANGED' });
    },
    confirm() {
      const current = running();
      if (current.getSnapshot().context.probation) current.send({ type: 'CONFIRM', reason: 'host' });
    },
    check: (trigger = 'manual', options = {}) => checkOnce(trigger, options.look === true),
    applyStaged() {
      const applying = applyStagedNow() ?? appliedAtStart;
      if (applying) return applying;
      const snapshot = running().getSnapshot();
      const reason = snapshot.context.staged
        ? `an update is running (${statePath(snapshot)}); wait for it to finish`
        : "no version is staged (a check with activation 'next-start' stages one)";
      return Promise.reject(new UpdateError('INVALID_ARGUMENT', `Nothing to apply: ${reason}.`));
    },
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
            ? 'no previous version is retained (one is kept after the next successful update)'
            : `version ${to} is not retained (retained: ${kept.join(', ') || 'none'})`;
        return Promise.reject(new UpdateError('ROLLBACK_UNAVAILABLE', `Cannot roll back: ${reason}.`));
      }
      current.send(event);
      return settled(event.sessionId);
    },
    release(version) {
      const current = running();
      const quarantined = current.getSnapshot().context.quarantine;
      if (!quarantined.some((bad) => bad.version === version)) {
        const listed = [...new Set(quarantined.map((bad) => bad.version))].join(', ') || 'none';
        throw new UpdateError('INVALID_ARGUMENT', `Version ${version} is not quarantined (quarantined: ${listed}); nothing was changed.`);
      }
      current.send({ type: 'RELEASE', version });
      if (journal?.failure) throw journal.failure;
    },
    stop() {
      keeper.close();
      actor?.stop();
      stoppedIn = actor?.getSnapshot() ?? stoppedIn;
      journal?.log.close();
      actor = undefined;
      journal = undefined;
      probationArmedFor = undefined;
      appliedAtStart = null;
      timers.clearAll();
      releaseLock?.();
      releaseLock = null;
    },
    getSnapshot() {
      if (journal?.failure) throw journal.failure;
      return actor?.getSnapshot() ?? stoppedIn ?? initialSnapshot();
    },
    subscribe(listener) {
      const subscription = running().subscribe(listener);
      return unsubscriber(() => subscription.unsubscribe());
    },
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      set.add(listener as (payload: never) => void);
      listeners.set(event, set);
      return unsubscriber(() => void set.delete(listener as (payload: never) => void));
    },
    get actor() {
      return actor;
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
      if (!journal) throw new UpdateError('INVALID_ARGUMENT', 'The updater is not started: call and await start() first.');
      return journal.log;
    },
  };
}
