/**
 * The chart with its actors: network, storage and the host's hooks, as one platform provides them.
 */
import type { RateBudget } from './download/rateBudget.js';
import { updaterMachine } from '../../machines/updater.machine.js';
import type { DownloadProgress, TrustState, UpdaterConfig } from '../../machines/types.js';
import type { LogHead } from './log/logAnchor.js';
import { createCheckConditions } from './actors/checkConditions.js';
import { createCheckDiskSpace } from './actors/checkDiskSpace.js';
import { createCheckHealth } from './actors/checkHealth.js';
import { createDownloadVersion } from './actors/downloadVersion.js';
import { createFetchManifest } from './actors/fetchManifest.js';
import { estimateFetchBytes } from './delta/estimateFetch.js';
import { IndexCache, supportsDifferential, wantsChunkIndex } from './delta/deltaDownload.js';
import { createLoadModel } from './actors/loadModel.js';
import { createRestoreVersion } from './actors/restoreVersion.js';
import { createRunMigration } from './actors/runMigration.js';
import { createStageVersion } from './actors/stageVersion.js';
import { createSwitchActive } from './actors/switchActive.js';
import { createVerifyStaged } from './actors/verifyStaged.js';
import type { LoadedModels } from './modelRef.js';
import type { ResolvedPolicy } from './updatePolicy.js';
import type { ModelStore } from './ports/modelStore.js';
import type { Platform, UpdaterOptions } from './updaterOptions.js';
import { REAL_TIMERS, type Timers } from './download/transferGuard.js';

/**
 * The download guards' timers: the updater's clock when it has one (a SimulatedClock in tests), with
 * its own now() where it has one, else the real timers.
 */
/** The guards' and the bandwidth cap's timers: the updater's clock when it has one. */
export function downloadTimers(options: UpdaterOptions<any>, now: () => number): Timers {
  const clock = options.clock as (NonNullable<UpdaterOptions['clock']> & { now?: () => number }) | undefined;
  if (!clock) return REAL_TIMERS;
  return {
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (id) => clock.clearTimeout(id),
    now: typeof clock.now === 'function' ? () => clock.now!() : now,
  };
}

export interface ActorDependencies {
  options: UpdaterOptions<any>;
  platform: Platform;
  /** The platform's store, with its errors typed. */
  store: ModelStore;
  models: LoadedModels<any>;
  config: UpdaterConfig;
  policy: ResolvedPolicy;
  now: () => number;
  /** Sampled download progress, for the host and the chart. */
  onProgress: (progress: DownloadProgress) => void;
  /** Keeps an accepted trust state outside the log (with the chain-end anchor). */
  saveTrust?: (trust: TrustState) => Promise<void>;
  /** The log's last record, durable, for the anchor written with the active pointer. */
  logHead?: () => Promise<LogHead | null>;
  /** The bandwidth cap shared by every connection of a download (`download.maxBytesPerSecond`). */
  budget?: RateBudget;
}

/**
 * @example
 * const machine = provideActors({ options, platform, store, models, config, policy, now, onProgress })
 */
export function provideActors({ options, platform, store, models, config, policy, now, onProgress, saveTrust, logHead, budget }: ActorDependencies) {
  // Chunk indexes the check fetched and checked, for the download that follows.
  const indexCache = new IndexCache();
  return updaterMachine.provide({
    actors: {
      fetchManifest: createFetchManifest({
        manifestUrl: options.manifestUrl ?? [],
        maxBytes: options.maxManifestBytes ?? 1024 * 1024,
        retries: options.retry?.manifestRetries ?? 0,
        timeoutMs: options.manifestTimeoutMs ?? 30_000,
        ...(options.clock ? { timers: options.clock } : {}),
        allowUnsigned: options.allowUnsigned ?? false,
        clockSkewMs: options.clockSkewMs ?? 0,
        ...(options.headers ? { headers: options.headers } : {}),
        ...(platform.trust ? { trustStore: { write: saveTrust ?? ((trust: TrustState) => platform.trust!.write(trust)) } } : {}),
        ...(platform.fetch ? { fetch: platform.fetch } : {}),
        wantsChunkIndexes: (candidate) => supportsDifferential(store, platform.staging) && candidate.files.some(wantsChunkIndex),
        estimateFetch: (candidate, baseUrl, signal) =>
          estimateFetchBytes(candidate, { store, staging: platform.staging, transport: platform.transport, baseUrl, signal, limits: options.download ?? {}, timers: downloadTimers(options, now), indexCache }),
      }),
      checkConditions: createCheckConditions(policy.downloadWhen, policy.avoidMeteredConnection),
      checkDiskSpace: createCheckDiskSpace(store, platform.staging),
      downloadVersion: createDownloadVersion({
        store,
        transport: platform.transport,
        staging: platform.staging,
        limits: options.download ?? {},
        timers: downloadTimers(options, now),
        ...(budget ? { budget } : {}),
        manifestUrl: [options.manifestUrl ?? []].flat()[0] ?? '',
        progressIntervalMs: options.progressIntervalMs ?? 500,
        now,
        onProgress,
        indexCache,
      }),
      verifyStaged: createVerifyStaged(store),
      stageVersion: createStageVersion(store),
      runMigration: createRunMigration(options.loader ?? {}, models),
      loadModel: createLoadModel(models),
      checkHealth: createCheckHealth(models),
      switchActive: createSwitchActive(store, models, config, now, logHead),
      restoreVersion: createRestoreVersion(store, models, config, now, logHead),
    },
  });
}
