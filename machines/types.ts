/**
 * The statechart's vocabulary: manifest shapes, context, events. Plain data only, so every value can be
 * journaled as JSON and replayed.
 */
import type { UpdateErrorData } from './errorCodes.js';

export interface ManifestFile {
  /** Relative, normalized path inside the version folder. */
  path: string;
  size: number;
  sha256: string;
  /** Where to fetch it, relative to the manifest's URL. */
  url: string;
  /**
   * Its chunk index (src/core/chunks/chunkIndex.ts), written by `publish`: a client that holds some of its
   * chunks fetches only the others. Absent in manifests published before indexes (whole-file download).
   */
  chunkIndex?: ChunkIndexRef;
}

/** Where a file's chunk index is and what it must be: the signed manifest names its size and SHA-256. */
export interface ChunkIndexRef {
  /** Relative to the manifest's URL. */
  url: string;
  size: number;
  sha256: string;
}

export interface ManifestVersion {
  version: string;
  channel: string;
  /**
   * What the host must be able to run: the app version range, runtime version ranges by name, memory,
   * accelerator kinds (any one of them). A key this client does not know makes the version inadmissible.
   */
  requires?: VersionRequirements;
  notes?: string;
  /** Publisher-defined JSON (model format, golden inputs and expected outputs...), signed with the manifest. */
  metadata?: Record<string, unknown>;
  publishedAt?: string;
  /** Staged rollout: the fraction of installs (0 to 1) that are offered this version. Absent: all. */
  rollout?: number;
  /** Withdrawn by its publisher: never offered again; an install running it rolls back (VERSION_PULLED). */
  pulled?: true;
  files: ManifestFile[];
}

export interface VersionRequirements {
  app?: string;
  /** Runtime or execution-backend name → semver range, e.g. `{ onnxruntime: '>=1.17' }`. */
  runtime?: Record<string, string>;
  minMemoryBytes?: number;
  /** Accelerator kinds, any one of which the host must have (e.g. `['webgpu', 'cuda']`). */
  accelerators?: string[];
  /** Requirements from a newer publisher that this client cannot judge. */
  [unknown: string]: unknown;
}

/** What the host can run, matched against versions' `requires`. An absent field is not checked. */
export interface HostCapabilities {
  /** Runtime name → the version the host has, e.g. `{ onnxruntime: '1.18.0' }`. */
  runtime?: Record<string, string>;
  memoryBytes?: number;
  accelerators?: string[];
}

/** A version on offer that this install cannot take, and why. */
export interface SkippedVersion {
  version: string;
  reason: string;
}

export interface Manifest {
  schemaVersion: 1;
  modelId: string;
  /** Signed manifests: increases with every publish (rollback defense). */
  serial?: number;
  /** Signed manifests: ISO 8601 instant after which the manifest is refused (freeze defense). */
  expires?: string;
  /**
   * Signed manifests: the key set that signs from this manifest on (key rotation). A rotation made by
   * this version of `publish` also carries `version` (1 for the first rotation, then 2, ...) and
   * `previous` (the id of the key set it rotates from, see keySetId): rotations chain one after the
   * other, and such a rotation resets the anti-rollback serial (fast-forward recovery).
   */
  trust?: { keys: string[]; threshold: number; version?: number; previous?: string };
  versions: ManifestVersion[];
}

/**
 * Whom the updater believes: the keys a manifest must be signed with and the highest serial accepted.
 * Changed only by the fetchManifest actor's output (a verified rotation or a newer serial) and by a TRUST
 * event when the host configures other keys, so the log replays it.
 */
export interface TrustState {
  /** Base64 raw Ed25519 public keys, sorted; empty when the host allows unsigned manifests. */
  keys: string[];
  threshold: number;
  /** Highest serial ever accepted; null before the first manifest with one. */
  serial: number | null;
  /** The key set the host configured ("threshold:key,key"), so a change of configuration is noticed. */
  anchor: string;
  /**
   * The `trust.version` of the chained rotation that installed the current keys; absent (0) for the
   * configured keys and after rotations published without a chain. The next rotation must come after it.
   */
  rotation?: number;
}

/** A version that is on disk, complete and verified. */
export interface InstalledVersion {
  version: string;
  files: Array<Pick<ManifestFile, 'path' | 'size' | 'sha256'>>;
  /**
   * Set only for the model the app ships in its own bundle (option `bundled`): the folder it is loaded
   * from, in place. It is never copied, moved or deleted, and retention always keeps it as a rollback
   * target without counting it (it takes no space in the model folder).
   */
  bundledPath?: string;
  /** The version's signed `metadata`, kept for the hooks. */
  metadata?: Record<string, unknown>;
}

export type ApprovalRule = 'auto' | 'ask';
/** One rule for every update, or one per semver level of the update. */
export type Approval = ApprovalRule | { major?: ApprovalRule; minor?: ApprovalRule; patch?: ApprovalRule };

export interface UpdaterConfig {
  /** Null: the host gave none, so `requires.app` ranges are not checked. */
  appVersion: string | null;
  /** Versions the host never wants offered. */
  skip: string[];
  /** A semver range the host is pinned to; null: any. */
  pin: string | null;
  /** This install's stable random id, for staged rollouts; null: only fully rolled-out versions. */
  installId: string | null;
  /** How often a download waiting for its conditions looks again. */
  conditionsPollMs: number;
  channel: string;
  /**
   * What the host can run; absent (or null: no longer given): versions' runtime, memory and accelerator
   * requirements are not checked.
   */
  capabilities?: HostCapabilities | null;
  approval: Approval;
  /** Attempts of one download (the first included) before the session fails. */
  maxDownloadAttempts: number;
  /** Deferred checks (network or service down) before the session gives up until the next trigger. */
  maxCheckAttempts: number;
  /** First back-off wait; doubles each attempt up to maxRetryDelayMs. */
  retryBaseDelayMs: number;
  maxRetryDelayMs: number;
  /** Free space required beyond the download itself, as a fraction of its size (plus 1 MiB). */
  diskMargin: number;
  /** Versions kept on disk, the active one included (at least 2). */
  keepVersions: number;
  /** Byte budget for retained versions beyond the previous one. */
  maxRetainedBytes: number;
  /** Successful loads (the one during the update counts) that end a version's probation. */
  confirmAfterLoads: number;
  /** Starts that did not reach a successful load, after which a version on probation is rolled back. */
  maxFailedStarts: number;
}

export type Trigger = 'startup' | 'manual' | 'scheduled';

export interface Session {
  id: string;
  /** 'apply': the switch to the staged version (applyStaged(), or the start after staging). */
  trigger: Trigger | 'rollback' | 'apply';
  startedAt: number;
  /** activation 'next-start': the session stages the version it finds and does not switch to it. */
  stageOnly?: boolean;
  /** Attempt counter of the step in progress (check or download), 1-based. */
  attempt: number;
  /** A random number in [0, 1) from the host, which seeds this session's back-off jitter. */
  jitter?: number;
  /** A check that only looks: it reports the candidate and ends, leaving nothing pending. */
  look?: boolean;
}

export interface DownloadProgress {
  version: string;
  bytes: number;
  total: number;
  bytesPerSecond: number;
  /** Seconds left at the current rate; null while the rate is unknown. */
  etaSeconds: number | null;
}

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

/** `available`: a check that only looks found a version to install (nothing was downloaded). */
export type Outcome = 'up-to-date' | 'available' | 'staged' | 'activated' | 'rolled-back' | 'failed' | 'cancelled' | 'declined';

export interface SessionResult {
  sessionId: string;
  outcome: Outcome;
  /** The version the session was about (the candidate, or the rollback target). */
  version: string | null;
  error: UpdateErrorData | null;
}

export interface RollbackPlan {
  /** The version being left: a failed candidate, or the active one on a manual rollback. */
  from: InstalledVersion | null;
  /** The version that is (or becomes) active afterwards. */
  to: InstalledVersion | null;
  /** Why: the failure that forced it, or null for a manual rollback. */
  cause: UpdateErrorData | null;
  manual: boolean;
  /** Version folders the clean-up after the rollback must leave: a staged version waiting for the next start. */
  keep?: string[];
}

/** A build the install must not take again: it failed here, or the user rolled back from it. */
export interface QuarantinedBuild {
  version: string;
  /** The build's identity: its files' paths and hashes. A republished, different build is not quarantined. */
  build: string;
  reason: string;
  /** Times this build was left; an interrupted update is retried once before the build is skipped. */
  count: number;
}

/** A newly activated version that the host has not confirmed yet. */
export interface Probation {
  version: string;
  /** What to go back to if the version keeps failing. */
  previous: InstalledVersion | null;
  loads: number;
  /** Starts since the last successful load. */
  failedStarts: number;
}

export interface UpdaterContext {
  config: UpdaterConfig;
  quarantine: QuarantinedBuild[];
  probation: Probation | null;
  active: InstalledVersion | null;
  /** Older complete versions kept for rollback, newest first. */
  retained: InstalledVersion[];
  /** Last manifest accepted, its ETag (for If-None-Match) and the mirror that served it. */
  manifest: { etag: string | null; body: Manifest; url?: string } | null;
  trust: TrustState;
  session: Session | null;
  candidate: ManifestVersion | null;
  digests: FileDigest[] | null;
  /** The download conditions not met, by name, while the download waits for them. */
  blockedBy: string[] | null;
  /** Ephemeral: sampled download progress; replays to its last journaled value. */
  progress: DownloadProgress | null;
  rollback: RollbackPlan | null;
  /** Error of the step in progress (drives retry waits). */
  error: UpdateErrorData | null;
  lastResult: SessionResult | null;
  /**
   * A version downloaded, verified and promoted into its version folder, waiting to be switched to at the
   * next start (activation 'next-start'). Kept across sessions; absent in logs older than the option.
   */
  staged?: ManifestVersion | null;
  /** The last check's estimate of the bytes its candidate's update fetches; absent in older logs. */
  estimate?: FetchEstimate | null;
}

export interface UpdaterInput {
  config: UpdaterConfig;
  quarantine?: QuarantinedBuild[];
  active?: InstalledVersion | null;
  retained?: InstalledVersion[];
  trust?: TrustState;
}

export type UpdaterEvent =
  | { type: 'CHECK'; sessionId: string; at: number; trigger: Trigger; jitter?: number; stageOnly?: boolean; look?: boolean }
  /** Switch to the staged version now (applyStaged(), or start() after a 'next-start' check staged one). */
  | { type: 'APPLY_STAGED'; sessionId: string; at: number }
  | { type: 'APPROVE' }
  | { type: 'CANCEL' }
  | { type: 'ROLLBACK'; sessionId: string; at: number; to?: string }
  | { type: 'CONFIGURE'; config: Partial<UpdaterConfig> }
  | { type: 'PROGRESS'; progress: DownloadProgress }
  /** Ends a wait (retry back-off, deferred check) now; sent on recovery, when a restored timer is gone. */
  | { type: 'RETRY_NOW' }
  /** The host configured other trusted keys than the ones the trust state grew from. */
  | { type: 'TRUST'; trust: TrustState }
  /** The host process started (journaled before the active model is loaded). */
  /** `storagePersisted`: whether the platform granted persistent storage (browsers; absent where it is not asked). */
  | { type: 'STARTED'; at: number; storagePersisted?: boolean }
  /** The active model loaded at start-up. */
  | { type: 'LOADED'; version: string }
  /** The host confirms the active version works: probation ends. */
  | { type: 'CONFIRM'; reason: 'host' | 'loads' | 'time' }
  /** Recovery found an update cut off before its switch: undo it. */
  | { type: 'INTERRUPTED' }
  /** The host's download conditions may have changed (network, power, idle): look again. */
  | { type: 'CONDITIONS_CHANGED' }
  /** The host releases a version a rollback quarantined: it may be offered again. */
  | { type: 'RELEASE'; version: string };

/**
 * What the chart tells the outside world as a transition is taken (XState `emit`). Only a running actor
 * emits: replaying the log through the pure `transition()` does not, so a restart repeats no old news.
 */
export type UpdaterEmitted =
  /** A check found a version to install (it downloads next, or waits for approval). */
  | {
      type: 'update-available';
      version: string;
      notes: string | undefined;
      /** Bytes of the version's files. */
      size: number;
      /** Bytes the update will fetch: files and chunks the device holds are not fetched. Absent when not estimated. */
      fetchBytes?: number;
    }
  | { type: 'update-not-available'; sessionId: string }
  /** activation 'next-start': `version` was downloaded, verified and staged; the next start switches to it. */
  | { type: 'update-downloaded'; version: string }
  /** A switch made `version` active; `previous` was active before. */
  | { type: 'activated'; version: string; previous: string | null }
  /** A rollback made `version` active again, leaving `from`; `cause` is null when the host asked for it. */
  | { type: 'rolled-back'; version: string | null; from: string | null; cause: UpdateErrorData | null }
  /** A session failed. */
  | { type: 'failed'; error: UpdateErrorData };

/**
 * State tags (`snapshot.hasTag(...)`), so code outside the chart asks what a state is, not which it is:
 * - `settled`: nothing runs; the chart waits for the host (a deferred check waits for its timer too);
 * - `checkpointable`: no actor is invoked and no timer runs, so a checkpoint of it restores exactly;
 * - `waiting`: a timer ends the state, which a restart has lost;
 * - `beforeSwitch`: an update step before the switch, which a restart does not trust;
 * - `decidingActive`: a switch or rollback in flight decides which version is active.
 */
export type UpdaterTag = 'settled' | 'checkpointable' | 'waiting' | 'beforeSwitch' | 'decidingActive';

/** Outputs of the invoked actors: the contract between the chart and the adapters. */
export interface FetchManifestInput {
  etag: string | null;
  /** When the check started: the instant `expires` is compared with. */
  startedAt: number;
  trust: TrustState;
  /** The manifest held from an earlier check, whose expiry still counts when the service answers 304. */
  held: { expires: string | null } | null;
  /**
   * What selects the candidate, so the check can estimate the bytes its update would fetch (a new
   * manifest, or the held one when unchanged). Absent: no estimate.
   */
  selection?: { config: UpdaterConfig; active: InstalledVersion | null; quarantine: QuarantinedBuild[]; manifest: Manifest | null };
}

/** The bytes the update to `version` will fetch, estimated by the check (see FetchManifestInput.selection). */
export interface FetchEstimate {
  version: string;
  fetchBytes: number;
}
export type FetchManifestOutput =
  | { notModified: true; estimate?: FetchEstimate }
  | {
      notModified: false;
      /** Absent in logs written before estimates. */
      estimate?: FetchEstimate;
      etag: string | null;
      manifest: Manifest;
      /** The trust state after accepting it: its serial, and the new keys of a rotation. */
      trust: TrustState;
      /** The mirror that served it; files are fetched relative to it. */
      url: string;
      /** Accepted without a signature check (allowUnsigned). */
      unsigned: boolean;
      /** It brought a key rotation. */
      rotated: boolean;
    };

export interface CheckDiskSpaceInput {
  version: string;
  files: Array<Pick<ManifestFile, 'path' | 'size' | 'sha256'>>;
  margin: number;
  /** Versions the switch will drop anyway: removed early when that is what makes the download fit. */
  droppedAfterSwitch: InstalledVersion[];
  /** The retained list without them. */
  retainedAfterSwitch: InstalledVersion[];
}
export interface CheckDiskSpaceOutput {
  freeBytes: number;
  /** Set when versions were removed early to make room: the retained list now. */
  retained: InstalledVersion[] | null;
}

/** The host's download conditions, evaluated: the names of those not met (empty: go). */
export interface ConditionsOutput { unmet: string[] }

export interface DownloadInput { candidate: ManifestVersion; attempt: number; baseUrl?: string }
export interface DownloadOutput {
  digests: FileDigest[];
  /**
   * Bytes the attempt that completed fetched over the network; the rest was copied from versions the
   * device holds, already stored, or kept from an earlier attempt. Absent in logs written before 0.4.0.
   */
  fetchedBytes?: number;
  /** SHA-256 names of stored content that did not hash to its name and was removed before the download. */
  discardedContent?: string[];
}

export interface VerifyInput { candidate: ManifestVersion; digests: FileDigest[] }

export interface ModelStepInput { from: InstalledVersion | null; to: InstalledVersion }

export interface SwitchOutput { active: InstalledVersion; retained: InstalledVersion[] }
export interface RestoreOutput { active: InstalledVersion | null; retained: InstalledVersion[] }
