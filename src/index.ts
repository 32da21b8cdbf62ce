/**
 * `model-updater`: the host runtime's public surface. Every export is named on purpose. The publisher's
 * tools are in `model-updater/publish`, the inspector bridges in `model-updater/inspect` (their optional
 * peer dependencies are loaded only from there), the browser host in `model-updater/browser`, the
 * simulator and memory adapters in `model-updater/testing`.
 */
export {
  createModelUpdater,
  isSettled,
  type ModelUpdater,
  type ModelUpdaterOptions,
  type UpdatePolicy,
  type UpdateResult,
  type UpdaterEvents,
  type UpdaterActor,
  type Unsubscribe,
} from './node/createModelUpdater.js';
export { readActive, type ReadActiveOptions, type ActiveModel } from './node/readActive.js';
export { UpdateError, isUpdateError, ERROR_CODES, type UpdateErrorCode, type UpdateErrorData } from './core/errors.js';
export type { ModelLoader, ModelRef } from './core/modelRef.js';
export type { CheckOptions } from './core/updaterApi.js';
export type { HostCapabilities, SkippedVersion, VersionRequirements } from '../machines/types.js';
export { CHANNEL_ORDER } from '../machines/selectCandidate.js';
export { parseManifest, parseManifestText, MANIFEST_SCHEMA_VERSION } from './core/manifest/schema.js';
// Readers beside the updater: readActive is exported here (the host runtime's entry point).
// The host's trusted keys: the publisher's public key, as a file or text.
export { keyIdOf, parsePublicKeyText } from './publish/keys.js';
export { readPublicKeyFile } from './publish/keyFiles.js';
export { type SignedEnvelope, type Signature } from './core/trust/envelope.js';
export { canonicalJson } from './core/trust/canonical.js';
export { replay, type UpdaterSnapshot } from './core/log/replay.js';
export { type LogRecord, type LogVerification } from './core/log/record.js';
export { verifyLog } from './core/log/chain.js';
export { domainEventOf, type DomainEvent, type DomainEventType } from './core/log/domainEvents.js';
export { readLogFile, FileEventLog } from './node/fileEventLog.js';
export { logStats, type UpdateStats, type SessionStats, type DownloadStats } from './core/log/stats.js';
export { quarantineLog, type QuarantineReport } from './node/quarantineLog.js';
export { createUpdater, type Platform, type UpdaterOptions } from './core/createUpdater.js';
export type { DownloadCondition } from './core/updatePolicy.js';
export { DEFAULT_SCHEDULE, FLEET_SCHEDULE, nextCheckDelay, type SchedulePolicy } from './core/schedule.js';
export type { TracerLike, SpanLike } from './core/telemetry.js';
export type { GarbageReport } from './core/ports/modelStore.js';
export { FsModelStore } from './node/fsModelStore.js';
export { FileStagingArea } from './node/fileStagingArea.js';
export { createNodeTransport, type NodeTransportOptions } from './node/nodeTransport.js';
export { downloadFile, type DownloadFileOptions, type DownloadFileResult } from './core/download/downloadFile.js';
export type { DownloadLimits, Timers } from './core/download/transferGuard.js';
// The ports a custom platform implements (see Platform).
export type { Transport, TransportRequest, TransportResponse, BodySink } from './core/ports/transport.js';
export type { EventLog, LogSegmentOptions } from './core/ports/eventLog.js';
export type { TrustStore, SavedTrust } from './core/ports/trustStore.js';
export type { StagingArea, StagedFile, StagedWriter, ResumeRecord, Sha256 } from './core/ports/stagingArea.js';
export type { ModelStore, ActivePointer } from './core/ports/modelStore.js';
export { updaterMachine } from '../machines/updater.machine.js';
export { selectCandidate } from '../machines/selectCandidate.js';
export { rolloutBucket, approvalFor } from '../machines/versionPolicy.js';
export { planRetention } from '../machines/retention.js';
export type {
  Manifest,
  ManifestVersion,
  ManifestFile,
  InstalledVersion,
  DownloadProgress,
  SessionResult,
  Outcome,
  UpdaterContext,
  UpdaterEvent,
  UpdaterEmitted,
  UpdaterTag,
  UpdaterConfig,
  TrustState,
} from '../machines/types.js';
export { formatRecord, summarize } from './core/log/describe.js';
