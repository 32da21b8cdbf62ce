/**
 * The statechart's vocabulary: manifest shapes, context, events. Plain data only, so every value can be
 * journaled as JSON and replayed.
 */
import type { UpdateErrorData } from '../src/errors.js';

export interface ManifestFile {
  /** Relative, normalized path inside the version folder. */
  path: string;
  size: number;
  sha256: string;
  /** Where to fetch it, relative to the manifest's URL. */
  url: string;
}

export interface ManifestVersion {
  version: string;
  channel: string;
  requires?: { app?: string };
  notes?: string;
  publishedAt?: string;
  files: ManifestFile[];
}

export interface Manifest {
  schemaVersion: 1;
  modelId: string;
  versions: ManifestVersion[];
}

/** A version that is on disk, complete and verified. */
export interface InstalledVersion {
  version: string;
  files: Array<Pick<ManifestFile, 'path' | 'size' | 'sha256'>>;
}

export type Approval = 'auto' | 'ask';

export interface UpdaterConfig {
  /** Null: the host gave none, so `requires.app` ranges are not checked. */
  appVersion: string | null;
  channel: string;
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
}

export type Trigger = 'startup' | 'manual' | 'scheduled';

export interface Session {
  id: string;
  trigger: Trigger | 'rollback';
  startedAt: number;
  /** Attempt counter of the step in progress (check or download), 1-based. */
  attempt: number;
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

export type Outcome = 'up-to-date' | 'activated' | 'rolled-back' | 'failed' | 'cancelled' | 'declined';

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
}

/** A build the install must not take again: it failed here, or the user rolled back from it. */
export interface QuarantinedBuild {
  version: string;
  /** The build's identity: its files' paths and hashes. A republished, different build is not quarantined. */
  build: string;
  reason: string;
}

export interface UpdaterContext {
  config: UpdaterConfig;
  quarantine: QuarantinedBuild[];
  active: InstalledVersion | null;
  /** Older complete versions kept for rollback, newest first. */
  retained: InstalledVersion[];
  /** Last manifest accepted and its ETag, for If-None-Match. */
  manifest: { etag: string | null; body: Manifest } | null;
  session: Session | null;
  candidate: ManifestVersion | null;
  digests: FileDigest[] | null;
  /** Ephemeral: sampled download progress; replays to its last journaled value. */
  progress: DownloadProgress | null;
  rollback: RollbackPlan | null;
  /** Error of the step in progress (drives retry waits). */
  error: UpdateErrorData | null;
  lastResult: SessionResult | null;
}

export interface UpdaterInput {
  config: UpdaterConfig;
  quarantine?: QuarantinedBuild[];
  active?: InstalledVersion | null;
  retained?: InstalledVersion[];
}

export type UpdaterEvent =
  | { type: 'CHECK'; sessionId: string; at: number; trigger: Trigger }
  | { type: 'APPROVE' }
  | { type: 'CANCEL' }
  | { type: 'ROLLBACK'; sessionId: string; at: number; to?: string }
  | { type: 'CONFIGURE'; config: Partial<UpdaterConfig> }
  | { type: 'PROGRESS'; progress: DownloadProgress }
  /** Ends a wait (retry back-off, deferred check) now; sent on recovery, when a restored timer is gone. */
  | { type: 'RETRY_NOW' };

/** Outputs of the invoked actors: the contract between the chart and the adapters. */
export interface FetchManifestInput { etag: string | null }
export type FetchManifestOutput =
  | { notModified: true }
  | { notModified: false; etag: string | null; manifest: Manifest };

export interface CheckDiskSpaceInput { version: string; bytesNeeded: number; margin: number }
export interface CheckDiskSpaceOutput { freeBytes: number }

export interface DownloadInput { candidate: ManifestVersion; attempt: number }
export interface DownloadOutput { digests: FileDigest[] }

export interface VerifyInput { candidate: ManifestVersion; digests: FileDigest[] }

export interface ModelStepInput { from: InstalledVersion | null; to: InstalledVersion }

export interface SwitchOutput { active: InstalledVersion; retained: InstalledVersion[] }
export interface RestoreOutput { active: InstalledVersion | null; retained: InstalledVersion[] }
