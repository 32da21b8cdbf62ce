/**
 * The update lifecycle as one statechart. Pure: every effect is an invoked actor supplied with
 * `machine.provide()`, time and identifiers arrive in events, so a journal of the events it received
 * replays to the same snapshot through xstate's `transition()`.
 */
import semver from 'semver';
import { assertEvent, assign, emit, enqueueActions, fromPromise, setup } from 'xstate';
import { isTransientCode, type UpdateErrorData } from './errorCodes.js';
import { actorErrorData } from './failureCodes.js';
import { approvalFor } from './versionPolicy.js';
import { planRetention } from './retention.js';
import { drawFromSeed } from './seededRandom.js';
import { buildId, selectCandidate, toInstalled, totalSize } from './selectCandidate.js';
import { isPulled, pulledRollbackTarget } from './pulledVersion.js';
import type {
  CheckDiskSpaceInput,
  ConditionsOutput,
  CheckDiskSpaceOutput,
  DownloadInput,
  DownloadOutput,
  FetchManifestInput,
  FetchManifestOutput,
  ModelStepInput,
  Outcome,
  RestoreOutput,
  RollbackPlan,
  SwitchOutput,
  UpdaterContext,
  UpdaterEmitted,
  UpdaterEvent,
  UpdaterInput,
  UpdaterTag,
  VerifyInput,
} from './types.js';

/** Placeholder actors: the chart declares their contracts, adapters provide the real ones. */
function notProvided<TOutput, TInput>(name: string) {
  return fromPromise<TOutput, TInput>(async () => {
    throw new Error(`The "${name}" actor was not provided: pass it with machine.provide({ actors }).`);
  });
}

/** Back-off for the next attempt: the server's Retry-After when it gave one, else doubling from the base. */
export function retryDelayMs(context: UpdaterContext): number {
  const { retryBaseDelayMs, maxRetryDelayMs } = context.config;
  const requested = context.error?.retryAfterMs;
  if (requested !== undefined) return requested;
  const attempt = context.session?.attempt ?? 1;
  const ceiling = Math.min(maxRetryDelayMs, retryBaseDelayMs * 2 ** (attempt - 1));
  // Full jitter, so a fleet that failed together does not retry together; the randomness is the
  // session's seed (from the CHECK event), spread per attempt by a pure generator.
  const seed = context.session?.jitter;
  return seed === undefined ? ceiling : Math.floor(ceiling * drawFromSeed(seed, attempt));
}


function result(context: UpdaterContext, outcome: Outcome, error: UpdateErrorData | null = null) {
  return {
    sessionId: context.session?.id ?? 'none',
    outcome,
    version: context.candidate?.version ?? context.rollback?.to?.version ?? null,
    error,
  };
}

/** Fields that only live for the length of one session. */
const sessionCleared = {
  candidate: null,
  blockedBy: null,
  digests: null,
  progress: null,
  rollback: null,
  error: null,
} satisfies Partial<UpdaterContext>;

export const updaterMachine = setup({
  types: {
    context: {} as UpdaterContext,
    events: {} as UpdaterEvent,
    input: {} as UpdaterInput,
    emitted: {} as UpdaterEmitted,
    tags: {} as UpdaterTag,
  },
  actors: {
    fetchManifest: notProvided<FetchManifestOutput, FetchManifestInput>('fetchManifest'),
    checkConditions: notProvided<ConditionsOutput, void>('checkConditions'),
    checkDiskSpace: notProvided<CheckDiskSpaceOutput, CheckDiskSpaceInput>('checkDiskSpace'),
    downloadVersion: notProvided<DownloadOutput, DownloadInput>('downloadVersion'),
    verifyStaged: notProvided<void, VerifyInput>('verifyStaged'),
    stageVersion: notProvided<void, ModelStepInput>('stageVersion'),
    runMigration: notProvided<void, ModelStepInput>('runMigration'),
    loadModel: notProvided<void, ModelStepInput>('loadModel'),
    checkHealth: notProvided<void, ModelStepInput>('checkHealth'),
    switchActive: notProvided<SwitchOutput, ModelStepInput>('switchActive'),
    restoreVersion: notProvided<RestoreOutput, RollbackPlan>('restoreVersion'),
  },
  guards: {
    upToDate: ({ context }) => context.candidate === null,
    // The publisher withdrew the active version and a kept one can replace it (else a candidate may).
    activeWasPulled: ({ context }) => context.active !== null && isPulled(context.manifest?.body, context.active.version) && pulledTarget(context) !== null,
    onlyLooking: ({ context }) => context.session?.look === true,
    // The host changed its configuration while an update waits for approval: does the wait still stand?
    pendingStillStands: ({ context, event }) => {
      assertEvent(event, 'CONFIGURE');
      const config = { ...context.config, ...event.config };
      const reselected = context.manifest ? selectCandidate(context.manifest.body, config, context.active, context.quarantine) : null;
      return reselected?.version === context.candidate?.version && approvalFor(config.approval, context.active?.version ?? null, reselected!.version) === 'ask';
    },
    needsApproval: ({ context }) =>
      approvalFor(context.config.approval, context.active?.version ?? null, context.candidate!.version) === 'ask',
    checkCanBeDeferred: ({ context }, error: UpdateErrorData) =>
      isTransientCode(error.code) && (context.session?.attempt ?? 1) < context.config.maxCheckAttempts,
    downloadCanBeRetried: ({ context }, error: UpdateErrorData) =>
      isTransientCode(error.code) && (context.session?.attempt ?? 1) < context.config.maxDownloadAttempts,
    probationExhausted: ({ context }) =>
      context.probation !== null && context.probation.failedStarts + 1 > context.config.maxFailedStarts,
    /** activation 'next-start': this session stages what it found and does not switch. */
    stagesOnly: ({ context }) => context.session?.stageOnly === true,
    /** A staging session found the very build that is staged already: nothing to download. */
    candidateAlreadyStaged: ({ context }) =>
      context.session?.stageOnly === true && !!context.staged && buildId(toInstalled(context.staged)) === buildId(toInstalled(context.candidate!)),
    hasStaged: ({ context }) => !!context.staged,
    canRollBack: ({ context, event }) => {
      assertEvent(event, 'ROLLBACK');
      return context.active !== null && rollbackTarget(context, event.to) !== null;
    },
  },
  actions: {
    beginSession: assign(({ event }) => {
      assertEvent(event, 'CHECK');
      return {
        ...sessionCleared,
        session: {
          id: event.sessionId,
          trigger: event.trigger,
          startedAt: event.at,
          attempt: 1,
          ...(event.jitter === undefined ? {} : { jitter: event.jitter }),
          ...(event.stageOnly ? { stageOnly: true } : {}),
          ...(event.look ? { look: true } : {}),
        },
      };
    }),
    recordBlocked: assign((_, output: ConditionsOutput) => ({ blockedBy: output.unmet.length ? output.unmet : null })),
    configure: assign(({ context, event }) => {
      assertEvent(event, 'CONFIGURE');
      return { config: { ...context.config, ...event.config } };
    }),
    recordManifest: assign(({ context }, output: FetchManifestOutput) => {
      const manifest = output.notModified ? context.manifest : { etag: output.etag, body: output.manifest, url: output.url };
      const trust = output.notModified ? context.trust : output.trust;
      const candidate = manifest ? selectCandidate(manifest.body, context.config, context.active, context.quarantine) : null;
      return { manifest, trust, candidate, error: null, ...(output.estimate ? { estimate: output.estimate } : {}) };
    }),
    // The host's keys changed: start over from them, but never forget the highest serial seen. A trust
    // state a later chained rotation produced (kept outside the log) is taken whole: its serial floor was
    // reset by that rotation (fast-forward recovery).
    resetTrust: assign(({ context, event }) => {
      assertEvent(event, 'TRUST');
      if ((event.trust.rotation ?? 0) > (context.trust.rotation ?? 0) && event.trust.anchor === context.trust.anchor) return { trust: event.trust };
      const serials = [context.trust.serial, event.trust.serial].filter((serial): serial is number => serial !== null);
      return { trust: { ...event.trust, serial: serials.length ? Math.max(...serials) : null } };
    }),
    // The outcome actions record the session's result and announce it; only a running actor emits.
    finishUpToDate: enqueueActions(({ context, enqueue }) => {
      const lastResult = result(context, 'up-to-date');
      enqueue.assign({ lastResult });
      enqueue.emit({ type: 'update-not-available', sessionId: lastResult.sessionId });
    }),
    // The candidate is staged (a newer one replaces an older): the next start, or APPLY_STAGED, switches to it.
    finishStaged: assign(({ context }) => ({ staged: context.candidate, progress: null, lastResult: result(context, 'staged') })),
    // Announced once, when the download is staged; a later check finding the same build stays quiet.
    announceStaged: emit(({ context }) => ({ type: 'update-downloaded' as const, version: context.candidate!.version })),
    // The switch to the staged version is a session of its own; the staged version becomes its candidate.
    beginApply: assign(({ context, event }) => {
      assertEvent(event, 'APPLY_STAGED');
      return {
        ...sessionCleared,
        session: { id: event.sessionId, trigger: 'apply' as const, startedAt: event.at, attempt: 1 },
        candidate: context.staged ?? null,
        staged: null,
      };
    }),
    finishLooked: assign(({ context }) => ({ lastResult: result(context, 'available') })),
    // Selection again, under the configuration now in force (channel, app version, capabilities, policy).
    reselectCandidate: assign(({ context }) => ({
      candidate: context.manifest ? selectCandidate(context.manifest.body, context.config, context.active, context.quarantine) : null,
    })),
    announceCandidate: emit(({ context }) => ({
      type: 'update-available' as const,
      version: context.candidate!.version,
      notes: context.candidate!.notes,
      size: totalSize(context.candidate!),
      ...(context.estimate?.version === context.candidate!.version ? { fetchBytes: context.estimate.fetchBytes } : {}),
    })),
    recordError: assign((_, error: UpdateErrorData) => ({ error })),
    countAttempt: assign(({ context }) => ({
      session: context.session ? { ...context.session, attempt: context.session.attempt + 1 } : null,
    })),
    resetAttempts: assign(({ context }) => ({
      session: context.session ? { ...context.session, attempt: 1 } : null,
      error: null,
    })),
    failSession: enqueueActions(({ context, enqueue }, error: UpdateErrorData) => {
      enqueue.assign({ error, progress: null, lastResult: result(context, 'failed', error) });
      enqueue.emit({ type: 'failed', error });
    }),
    cancelSession: assign(({ context }) => ({
      progress: null,
      lastResult: result(context, 'cancelled', { code: 'CANCELLED', message: 'The update was cancelled.' }),
    })),
    declineCandidate: assign(({ context }) => ({ lastResult: result(context, 'declined') })),
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { progress: event.progress };
    }),
    recordDigests: assign((_, output: DownloadOutput) => ({ digests: output.digests })),
    recordRetained: assign(({ context }, output: CheckDiskSpaceOutput) => ({ retained: output.retained ?? context.retained })),
    planFailureRollback: assign(({ context }, cause: UpdateErrorData) => ({
      error: cause,
      rollback: {
        from: context.candidate ? toInstalled(context.candidate) : null,
        to: context.active,
        cause,
        manual: false,
        ...keepStaged(context, context.candidate?.version),
      },
    })),
    planManualRollback: assign(({ context, event }) => {
      assertEvent(event, 'ROLLBACK');
      return {
        ...sessionCleared,
        session: { id: event.sessionId, trigger: 'rollback' as const, startedAt: event.at, attempt: 1 },
        rollback: { from: context.active, to: rollbackTarget(context, event.to), cause: null, manual: true },
      };
    }),
    activateCandidate: enqueueActions(({ context, enqueue }, { active, retained }: SwitchOutput) => {
      const pulledAway = replacedPulledVersion(context, active.version);
      enqueue.assign({
        active,
        retained,
        progress: null,
        // The switch removed every version folder but the active and retained ones: a staged one too.
        staged: null,
        // The load during the update is the first successful one.
        probation: { version: active.version, previous: context.active, loads: 1, failedStarts: 0 },
        lastResult: pulledAway ? result(context, 'rolled-back', pulledAway) : result(context, 'activated'),
      });
      // Nothing was kept to go back to, so an older offered version replaced a pulled one: for the host a rollback.
      if (pulledAway) enqueue.emit({ type: 'rolled-back', version: active.version, from: context.active?.version ?? null, cause: pulledAway });
      else enqueue.emit({ type: 'activated', version: active.version, previous: context.active?.version ?? null });
    }),
    countStart: assign(({ context }) => ({
      probation: context.probation && { ...context.probation, failedStarts: context.probation.failedStarts + 1 },
    })),
    countLoad: assign(({ context, event }) => {
      assertEvent(event, 'LOADED');
      const { probation } = context;
      if (!probation || probation.version !== event.version) return {};
      const loads = probation.loads + 1;
      return { probation: loads >= context.config.confirmAfterLoads ? null : { ...probation, loads, failedStarts: 0 } };
    }),
    confirm: assign({ probation: null }),
    releaseQuarantine: assign(({ context, event }) => {
      assertEvent(event, 'RELEASE');
      return { quarantine: context.quarantine.filter((bad) => bad.version !== event.version) };
    }),
    planProbationRollback: assign(({ context, event }) => {
      assertEvent(event, 'STARTED');
      const { version, previous, failedStarts } = context.probation!;
      return {
        ...sessionCleared,
        session: { id: `probation-${version}`, trigger: 'rollback' as const, startedAt: event.at, attempt: 1 },
        rollback: {
          from: context.active,
          to: previous,
          cause: {
            code: 'PROBATION_FAILED' as const,
            message: `Version ${version} failed to start ${failedStarts + 1} times before it was confirmed; the previous version was restored.`,
          },
          manual: false,
          ...keepStaged(context, version),
        },
      };
    }),
    planPulledRollback: assign(({ context }) => ({
      rollback: {
        from: context.active,
        to: pulledTarget(context),
        cause: {
          code: 'VERSION_PULLED' as const,
          message: `Version ${context.active?.version} was withdrawn by its publisher; the newest version kept that is still offered was restored.`,
        },
        manual: false,
      },
    })),
    planInterruptedRollback: assign(({ context }) => ({
      rollback: {
        from: context.candidate ? toInstalled(context.candidate) : null,
        to: context.active,
        cause: { code: 'INTERRUPTED' as const, message: 'The update was cut off before its switch (the process stopped); it was undone.' },
        manual: false,
        ...keepStaged(context, context.candidate?.version),
      },
    })),
    finishRollback: enqueueActions(({ context, enqueue }, { active, retained }: RestoreOutput) => {
      const cause = context.rollback?.cause ?? null;
      enqueue.assign({
        active,
        retained,
        progress: null,
        probation: context.probation?.version === active?.version ? context.probation : null,
        // A staged copy of the version just left is gone with it (rollbacks keep only a different one).
        staged: context.staged && context.staged.version === context.rollback?.from?.version ? null : (context.staged ?? null),
        quarantine: quarantineAfterRollback(context),
        lastResult: result(context, 'rolled-back', cause),
      });
      enqueue.emit({ type: 'rolled-back', version: active?.version ?? null, from: context.rollback?.from?.version ?? null, cause });
    }),
  },
  delays: {
    retryDelay: ({ context }) => retryDelayMs(context),
    conditionsPoll: ({ context }) => context.config.conditionsPollMs,
  },
}).createMachine({
  id: 'updater',
  context: ({ input }) => ({
    config: input.config,
    quarantine: input.quarantine ?? [],
    probation: null,
    active: input.active ?? null,
    retained: input.retained ?? [],
    trust: input.trust ?? { keys: [], threshold: 1, serial: null, anchor: '' },
    manifest: null,
    session: null,
    ...sessionCleared,
    lastResult: null,
    staged: null,
  }),
  initial: 'idle',
  on: {
    CONFIGURE: { actions: 'configure' },
    TRUST: { actions: 'resetTrust' },
    STARTED: { actions: 'countStart' },
    LOADED: { actions: 'countLoad' },
    CONFIRM: { actions: 'confirm' },
    RELEASE: { actions: 'releaseQuarantine' },
  },
  states: {
    idle: {
      initial: 'ready',
      tags: ['settled'],
      on: restingHandlers(),
      states: {
        ready: { tags: ['checkpointable'] },
        // The service or the network was down: the same session checks again after a back-off.
        deferred: {
          tags: ['waiting'],
          after: { retryDelay: { target: '#updater.checking', actions: 'countAttempt' } },
          on: { RETRY_NOW: { target: '#updater.checking', actions: 'countAttempt' } },
        },
      },
    },
    checking: {
      invoke: {
        id: 'fetchManifest',
        src: 'fetchManifest',
        input: ({ context }) => ({
          etag: context.manifest?.etag ?? null,
          startedAt: context.session?.startedAt ?? 0,
          trust: context.trust,
          held: context.manifest ? { expires: context.manifest.body.expires ?? null } : null,
          selection: { config: context.config, active: context.active, quarantine: context.quarantine, manifest: context.manifest?.body ?? null },
        }),
        onDone: { target: 'deciding', actions: { type: 'recordManifest', params: ({ event }) => event.output } },
        onError: [
          {
            guard: { type: 'checkCanBeDeferred', params: ({ event }) => actorErrorData(event) },
            target: 'idle.deferred',
            actions: { type: 'recordError', params: ({ event }) => actorErrorData(event) },
          },
          { target: 'idle', actions: { type: 'failSession', params: ({ event }) => actorErrorData(event) } },
        ],
      },
      on: { CANCEL: { target: 'idle', actions: 'cancelSession' } },
    },
    deciding: {
      always: [
        { guard: 'activeWasPulled', target: 'rollingBack', actions: 'planPulledRollback' },
        { guard: 'upToDate', target: 'idle', actions: 'finishUpToDate' },
        // A check that only looks reports what it found and leaves nothing pending.
        { guard: 'onlyLooking', target: 'idle', actions: ['announceCandidate', 'finishLooked'] },
        { guard: 'candidateAlreadyStaged', target: 'staged', actions: 'finishStaged' },
        { guard: 'needsApproval', target: 'awaitingApproval', actions: 'announceCandidate' },
        { target: 'downloading', actions: 'announceCandidate' },
      ],
    },
    awaitingApproval: {
      tags: ['settled', 'checkpointable'],
      on: {
        APPROVE: { target: 'downloading' },
        // Another channel, app version or policy: decide again; a candidate no longer admissible is dropped.
        CONFIGURE: [
          { guard: 'pendingStillStands', actions: 'configure' },
          { target: 'deciding', actions: ['configure', 'reselectCandidate'] },
        ],
        CANCEL: { target: 'idle', actions: 'declineCandidate' },
        CHECK: { target: 'checking', actions: 'beginSession' },
        ROLLBACK: { guard: 'canRollBack', target: 'rollingBack', actions: 'planManualRollback' },
        STARTED: restingHandlers().STARTED,
      },
    },
    downloading: {
      initial: 'checkingConditions',
      entry: 'resetAttempts',
      on: {
        CANCEL: { target: 'idle', actions: 'cancelSession' },
        PROGRESS: { actions: 'recordProgress' },
      },
      states: {
        // The host's conditions (unmetered network, on power, idle user...) gate the download.
        checkingConditions: {
          invoke: {
            id: 'checkConditions',
            src: 'checkConditions',
            onDone: [
              {
                guard: ({ event }) => event.output.unmet.length === 0,
                target: 'preflight',
                actions: { type: 'recordBlocked', params: () => ({ unmet: [] }) },
              },
              { target: 'waitingForConditions', actions: { type: 'recordBlocked', params: ({ event }) => event.output } },
            ],
            onError: { target: 'waitingForConditions', actions: { type: 'recordBlocked', params: () => ({ unmet: ['a condition threw'] }) } },
          },
        },
        waitingForConditions: {
          tags: ['waiting'],
          after: { conditionsPoll: 'checkingConditions' },
          on: { CONDITIONS_CHANGED: 'checkingConditions', RETRY_NOW: 'checkingConditions' },
        },
        preflight: {
          invoke: {
            id: 'checkDiskSpace',
            src: 'checkDiskSpace',
            input: ({ context }) => preflightInput(context),
            onDone: { target: 'fetching', actions: { type: 'recordRetained', params: ({ event }) => event.output } },
            onError: {
              target: '#updater.idle',
              actions: { type: 'failSession', params: ({ event }) => actorErrorData(event) },
            },
          },
        },
        fetching: {
          invoke: {
            id: 'downloadVersion',
            src: 'downloadVersion',
            input: ({ context }) => ({
              candidate: context.candidate!,
              attempt: context.session?.attempt ?? 1,
              ...(context.manifest?.url ? { baseUrl: context.manifest.url } : {}),
            }),
            onDone: {
              target: '#updater.verifying',
              actions: { type: 'recordDigests', params: ({ event }) => event.output },
            },
            onError: [
              {
                guard: { type: 'downloadCanBeRetried', params: ({ event }) => actorErrorData(event) },
                target: 'retryWait',
                actions: { type: 'recordError', params: ({ event }) => actorErrorData(event) },
              },
              {
                target: '#updater.idle',
                actions: { type: 'failSession', params: ({ event }) => actorErrorData(event) },
              },
            ],
          },
        },
        retryWait: {
          tags: ['waiting'],
          after: { retryDelay: { target: 'fetching', actions: 'countAttempt' } },
          on: { RETRY_NOW: { target: 'fetching', actions: 'countAttempt' } },
        },
      },
    },
    verifying: {
      invoke: {
        id: 'verifyStaged',
        src: 'verifyStaged',
        input: ({ context }) => ({ candidate: context.candidate!, digests: context.digests ?? [] }),
        onDone: { target: 'migrating' },
        onError: {
          target: 'idle',
          actions: { type: 'failSession', params: ({ event }) => actorErrorData(event) },
        },
      },
      on: { CANCEL: { target: 'idle', actions: 'cancelSession' } },
    },
    // Past this point the update finishes or rolls back: CANCEL is not accepted.
    migrating: {
      initial: 'staging',
      // Recovery sends this when the log ends before the switch: the step in flight is not trusted.
      on: { INTERRUPTED: { target: 'rollingBack', actions: 'planInterruptedRollback' } },
      states: {
        // Promoted into its version folder; with activation 'next-start' the session ends here (staged).
        staging: modelStep('stageVersion', 'migratingData', { guard: 'stagesOnly', target: '#updater.staged', actions: ['finishStaged', 'announceStaged'] }),
        migratingData: modelStep('runMigration', 'loading'),
        loading: modelStep('loadModel', 'checkingHealth'),
        checkingHealth: modelStep('checkHealth', 'switching'),
        switching: {
          tags: ['decidingActive'],
          invoke: {
            id: 'switchActive',
            src: 'switchActive',
            input: stepInput,
            onDone: { target: '#updater.active', actions: { type: 'activateCandidate', params: ({ event }) => event.output } },
            onError: {
              target: '#updater.rollingBack',
              actions: { type: 'planFailureRollback', params: ({ event }) => actorErrorData(event) },
            },
          },
        },
      },
    },
    rollingBack: {
      tags: ['decidingActive'],
      invoke: {
        id: 'restoreVersion',
        src: 'restoreVersion',
        input: ({ context }) => context.rollback!,
        onDone: { target: 'rolledBack', actions: { type: 'finishRollback', params: ({ event }) => event.output } },
        onError: {
          target: 'idle',
          actions: { type: 'failSession', params: ({ event }) => actorErrorData(event) },
        },
      },
    },
    active: { tags: ['settled', 'checkpointable'], on: restingHandlers() },
    // A version waits in its folder for the next start (or APPLY_STAGED); the active model is unchanged.
    staged: { tags: ['settled', 'checkpointable'], on: restingHandlers() },
    rolledBack: { tags: ['settled', 'checkpointable'], on: restingHandlers() },
  },
});

function preflightInput(context: UpdaterContext): CheckDiskSpaceInput {
  const next = toInstalled(context.candidate!);
  const plan = planRetention(next, context.active, context.retained, context.config);
  return {
    version: next.version,
    files: next.files,
    margin: context.config.diskMargin,
    droppedAfterSwitch: plan.dropped,
    retainedAfterSwitch: context.retained.filter((kept) => !plan.dropped.includes(kept)),
  };
}

/**
 * A staged version survives the clean-up after a rollback (the next start still switches to it), unless
 * it is the version the rollback leaves.
 */
function keepStaged(context: UpdaterContext, leaving: string | undefined): { keep?: string[] } {
  return context.staged && context.staged.version !== leaving ? { keep: [context.staged.version] } : {};
}

function stepInput({ context }: { context: UpdaterContext }): ModelStepInput {
  return { from: context.active, to: toInstalled(context.candidate!) };
}

/** One migration step: invoke the host-facing actor, go on when it succeeds, roll back when it fails. */
function modelStep(
  src: 'stageVersion' | 'runMigration' | 'loadModel' | 'checkHealth',
  next: 'migratingData' | 'loading' | 'checkingHealth' | 'switching',
  /** A transition taken instead of `next` when its guard holds. */
  instead?: { guard: 'stagesOnly'; target: '#updater.staged'; actions: readonly ['finishStaged', 'announceStaged'] },
) {
  return {
    tags: ['beforeSwitch'],
    invoke: {
      id: src,
      src,
      input: stepInput,
      onDone: instead ? [instead, { target: next }] : { target: next },
      onError: {
        target: '#updater.rollingBack',
        actions: {
          type: 'planFailureRollback',
          params: ({ event }: { event: { type: string; error: unknown } }) => actorErrorData(event),
        },
      },
    },
  } as const;
}

/** What `active` and `rolledBack` accept; `idle` accepts the same. */
function restingHandlers() {
  return {
    CHECK: { target: 'checking', actions: 'beginSession' },
    ROLLBACK: { guard: 'canRollBack', target: 'rollingBack', actions: 'planManualRollback' },
    APPLY_STAGED: { guard: 'hasStaged', target: '#updater.migrating.migratingData', actions: 'beginApply' },
    STARTED: [
      { guard: 'probationExhausted', target: 'rollingBack', actions: ['planProbationRollback', 'countStart'] },
      { actions: 'countStart' },
    ],
  } as const;
}

/**
 * The build a rollback leaves is not taken again: a failed one would fail again, and a user who rolled
 * back does not want it back. A different build of the same version is still offered.
 */
/** Failures of the machine the update ran on, not of the build: the build is tried again later. */
const ENVIRONMENT_FAILURES: ReadonlySet<string> = new Set(['STORAGE_FAILED', 'SWITCH_FAILED', 'INSUFFICIENT_DISK_SPACE', 'CANCELLED']);

function quarantineAfterRollback(context: UpdaterContext) {
  const left = context.rollback?.from;
  if (!left || ENVIRONMENT_FAILURES.has(context.rollback?.cause?.code ?? '')) return context.quarantine;
  const build = buildId(left);
  const earlier = context.quarantine.find((bad) => bad.version === left.version && bad.build === build);
  const reason = context.rollback?.cause?.code ?? 'ROLLED_BACK_BY_USER';
  const entry = { version: left.version, build, reason, count: (earlier?.count ?? 0) + 1 };
  return [...context.quarantine.filter((bad) => bad !== earlier), entry];
}

/** The VERSION_PULLED cause when `next` replaces a pulled active version with an older one, else null. */
function replacedPulledVersion(context: UpdaterContext, next: string): UpdateErrorData | null {
  const { active } = context;
  if (!active || !isPulled(context.manifest?.body, active.version) || !semver.lt(next, active.version)) return null;
  return {
    code: 'VERSION_PULLED',
    message: `Version ${active.version} was withdrawn by its publisher and no earlier version was kept; the newest version still offered, ${next}, was installed in its place.`,
  };
}

function pulledTarget(context: UpdaterContext) {
  return context.manifest ? pulledRollbackTarget(context.manifest.body, context.config, context.retained, context.quarantine) : null;
}

/** The retained version a rollback goes to: the one asked for, else the newest kept. */
function rollbackTarget(context: UpdaterContext, version: string | undefined) {
  return context.retained.find((kept) => version === undefined || kept.version === version) ?? null;
}

export type UpdaterMachine = typeof updaterMachine;
