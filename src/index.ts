/**
 * model-updater's public surface. Every export is named on purpose.
 */
export {
  createModelUpdater,
  isSettled,
  type ModelUpdater,
  type ModelUpdaterOptions,
  type UpdatePolicy,
  type UpdateResult,
  type UpdaterEvents,
} from './createModelUpdater.js';
export { UpdateError, isUpdateError, ERROR_CODES, type UpdateErrorCode, type UpdateErrorData } from './errors.js';
export type { ModelLoader, ModelRef } from './modelRef.js';
export { parseManifest, parseManifestText, MANIFEST_SCHEMA_VERSION } from './manifest/schema.js';
export { publish, type PublishOptions } from './manifest/publish.js';
export { generateKeyPair, keyIdOf, parsePrivateKeyText, parsePublicKeyText, type KeyPair } from './trust/keys.js';
export { readPrivateKeyFile, readPublicKeyFile, writeKeyPair } from './trust/keyFiles.js';
export { type SignedEnvelope, type Signature } from './trust/envelope.js';
export { signEnvelope } from './trust/sign.js';
export { canonicalJson } from './trust/canonical.js';
export { replay, type UpdaterSnapshot } from './log/replay.js';
export { verifyLog, type LogRecord, type LogVerification } from './log/record.js';
export { readLogFile, FileEventLog } from './log/fileEventLog.js';
export { logStats, type UpdateStats, type SessionStats, type DownloadStats } from './log/stats.js';
export { quarantineLog, type QuarantineReport } from './node/quarantineLog.js';
export { createUpdater, type Platform, type UpdaterOptions } from './createUpdater.js';
export type { DownloadCondition } from './policy.js';
export { DEFAULT_SCHEDULE, FLEET_SCHEDULE, nextCheckDelay, type SchedulePolicy } from './schedule.js';
export type { TracerLike, SpanLike } from './telemetry.js';
export type { GarbageReport } from './store.js';
export { FsModelStore } from './node/fsModelStore.js';
export { FileStagingArea } from './node/fileStagingArea.js';
export { createNodeTransport, type NodeTransportOptions } from './node/nodeTransport.js';
export { downloadFile, type DownloadFileOptions, type DownloadFileResult } from './download/downloadFile.js';
export type { DownloadLimits, Timers } from './download/transferGuard.js';
export type { Transport, TransportRequest, TransportResponse, BodySink } from './transport.js';
export type { StagingArea, StagedFile, StagedWriter, ResumeRecord, Sha256 } from './stagingArea.js';
export type { ModelStore, ActivePointer } from './store.js';
export { updaterMachine } from '../machines/updater.machine.js';
export { selectCandidate } from '../machines/selectCandidate.js';
export { rolloutBucket, approvalFor } from '../machines/policy.js';
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
  UpdaterConfig,
  TrustState,
} from '../machines/types.js';
export { formatRecord, summarize } from './log/describe.js';
export { replayIntoInspector, type InspectTarget } from './inspect/replayIntoInspector.js';
export { connectWebSocketInspector, type WebSocketInspector } from './inspect/webSocketInspector.js';
