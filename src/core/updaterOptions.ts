/**
 * What a host passes to create an updater, and what a platform (Node files, IndexedDB, the simulator)
 * provides it.
 */
import type { ActorOptions, InspectionEvent, Observer } from 'xstate';
import type { InstalledVersion } from '../../machines/types.js';
import type { updaterMachine } from '../../machines/updater.machine.js';
import type { HostCapabilities } from '../../machines/types.js';
import type { EventLog, LogSegmentOptions } from './ports/eventLog.js';
import type { ModelLoader } from './modelRef.js';
import type { UpdatePolicy } from './updatePolicy.js';
import type { ModelStore } from './ports/modelStore.js';
import type { TracerLike } from './telemetry.js';
import type { DownloadLimits } from './download/transferGuard.js';
import type { HookTimeouts } from './hookDeadline.js';
import type { StagingArea } from './ports/stagingArea.js';
import type { Transport } from './ports/transport.js';
import type { TrustStore } from './ports/trustStore.js';

export type { DownloadLimits } from './download/transferGuard.js';

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
   * Slow-retrieval defense for each file: the response head within `headersTimeoutMs` (default 30 s),
   * no body byte for `stallTimeoutMs` (default 30 s), at least `minBytesPerSecond` (default 1024; 0:
   * none) over a sliding `throughputWindowMs` (default 60 s). Each fails the attempt with
   * DOWNLOAD_STALLED, which is retried with back-off like a dropped connection, resuming what arrived.
   */
  download?: DownloadLimits;
  /** The host app's version, matched against each model version's `requires.app` range; without it, ranges are not checked. */
  appVersion?: string;
  /**
   * The model the app ships inside its own bundle: `path` is the folder holding its files, `version` its
   * semver version. With nothing installed, start() adopts it as the active version in place (its files'
   * sizes and SHA-256 are computed once and recorded in the active pointer), so a first start offline has
   * a model. It is read-only: never copied, moved or deleted; later updates replace it as active and it
   * stays a rollback target. `path` must not be inside the model folder, nor the model folder inside it.
   */
  bundled?: { version: string; path: string };
  /**
   * Release channel to follow. Default 'stable'. Channels from most to least stable: stable, beta, alpha,
   * nightly; a client takes versions of its channel and of every more stable one. A custom channel takes
   * its own versions and stable's.
   */
  channel?: string;
  /**
   * What this host can run, matched against versions' `requires`: runtime versions by name
   * (`{ onnxruntime: '1.18.0' }`), `memoryBytes`, `accelerators` (kinds it has, e.g. `['webgpu']`).
   * A field left out is not checked; a version needing a requirement this client does not know is skipped.
   */
  capabilities?: HostCapabilities;
  policy?: UpdatePolicy;
  loader?: ModelLoader<Handle>;
  /**
   * When a downloaded version becomes active. 'immediate' (default): the check switches to it.
   * 'next-start': the check downloads, verifies and stages it (outcome 'staged', event
   * `update-downloaded`) and leaves the active model alone; the next start() switches to it, or
   * applyStaged() does now.
   */
  activation?: 'immediate' | 'next-start';
  /**
   * Whether start() switches to a staged version before it loads a model. Default: true with activation
   * 'next-start', else false (then applyStaged() switches). `model-updater update --stage-only` passes false.
   */
  applyStagedOnStart?: boolean;
  /**
   * Deadlines of the host's hooks in milliseconds. Defaults: migrate 300 000 (5 min), load 120 000
   * (2 min), healthCheck 60 000 (1 min), unload 30 000 (30 s). Past one, the update rolls back with
   * HOOK_TIMEOUT (a load at start() rejects start() with it). Timed on `clock` when one is given.
   */
  hookTimeouts?: Partial<HookTimeouts>;
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
    /**
     * Quick retries of one manifest request inside a check, opt-in. Default 0: a failed check is deferred
     * by the chart (journaled, `maxCheckAttempts`, back-off, Retry-After honoured whatever its length).
     */
    manifestRetries?: number;
  };
  /** Extra free space required, as a fraction of the download. Default 0.05. */
  diskMargin?: number;
  maxManifestBytes?: number;
  /**
   * Deadline for the manifest's whole answer (headers and body) from one mirror, not re-armed by arriving
   * bytes; past it the check fails with SERVICE_UNAVAILABLE and is deferred. Default 30 000 ms.
   */
  manifestTimeoutMs?: number;
  progressIntervalMs?: number;
  /** Records after which a settled state is written to the log as a checkpoint. Default 500. */
  checkpointEvery?: number;
  /** How the event log is cut into segments and how many are kept (see LogSegmentOptions for the defaults). */
  log?: LogSegmentOptions;
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
  /** How model files are requested (Node sockets, fetch, the simulator's service). */
  transport: Transport;
  /** Where model files wait while they download. */
  staging: StagingArea;
  /** Takes the store's exclusive lock; resolves with its release. */
  lock?(): Promise<() => void>;
  /** This install's stable random id (created on first use), for staged rollouts. */
  installId?(): Promise<string>;
  /** Opens the event log (verifying it and cutting a torn tail). */
  openLog(now: () => number): EventLog | Promise<EventLog>;
  /**
   * Lists the files of the bundled model's folder (option `bundled`) with their sizes and SHA-256, read
   * only; rejects with INVALID_ARGUMENT when the folder is missing or holds anything but files and folders.
   */
  describeBundled?(path: string): Promise<InstalledVersion['files']>;
  /** Keeps a rotated key set beside the log (Node: `<dir>/trust.json`). */
  trust?: TrustStore;
  /** Answers the manifest requests instead of the global fetch (the in-memory update service of `model-updater/testing`). */
  fetch?: typeof fetch;
}
