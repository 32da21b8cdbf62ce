/**
 * What a host passes to create an updater, and what a platform (Node files, IndexedDB, the simulator)
 * provides it.
 */
import type { ActorOptions, InspectionEvent, Observer } from 'xstate';
import type { updaterMachine } from '../machines/updater.machine.js';
import type { EventLog } from './log/eventLog.js';
import type { ModelLoader } from './modelRef.js';
import type { UpdatePolicy } from './policy.js';
import type { ModelStore } from './store.js';
import type { TracerLike } from './telemetry.js';
import type { ThroughputLimits } from './throughputGuard.js';
import type { TrustStore } from './trust/trustStore.js';

/** Per-file limits of a download (see UpdaterOptions.download). */
export interface DownloadLimits extends ThroughputLimits {
  /** No byte for this long fails the attempt with DOWNLOAD_STALLED. Default 30 s. */
  stallTimeoutMs?: number;
}

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
   * Node: the HTTP proxy for the manifest and the model files (`http://user:pass@proxy:3128`), used instead
   * of HTTPS_PROXY / HTTP_PROXY / NO_PROXY; false ignores those variables and connects directly. Default:
   * the variables, lower-case names first, as curl reads them. A proxy that cannot be reached fails the
   * request (NETWORK_UNAVAILABLE); it is never bypassed. The browser uses its own proxy settings.
   */
  proxy?: string | false;
  /**
   * Slow-retrieval defense for each file: `stallTimeoutMs` (no byte for this long; default 30 s) and
   * `minBytesPerSecond` averaged over `throughputWindowMs` (default 30 s). Either fails the attempt with
   * DOWNLOAD_STALLED, which is retried with back-off like a dropped connection.
   */
  download?: DownloadLimits;
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
