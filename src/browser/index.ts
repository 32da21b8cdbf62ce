/**
 * model-updater for browsers (and Electron renderers): `import { createBrowserModelUpdater } from
 * 'model-updater/browser'`. Nothing here imports a Node built-in.
 */
export { createBrowserModelUpdater, type BrowserModelUpdater, type BrowserModelUpdaterOptions } from './createBrowserModelUpdater.js';
export { IdbModelStore, type IdbModelStoreOptions, type StorageEstimator } from './idbModelStore.js';
export { IdbEventLog, readIdbLog } from './idbEventLog.js';
export { holdLock } from './webLock.js';
export { fetchTransport } from './fetchTransport.js';
export { IdbStagingArea, type IdbStagingAreaOptions } from './idbStagingArea.js';
export type { Transport, TransportResponse } from '../transport.js';
export type { StagingArea } from '../stagingArea.js';
export {
  createUpdater,
  isSettled,
  type ModelUpdater,
  type UpdaterOptions,
  type UpdatePolicy,
  type UpdateResult,
  type UpdaterEvents,
  type Platform,
} from '../createUpdater.js';
export type { EventLog } from '../log/eventLog.js';
export { UpdateError, isUpdateError, ERROR_CODES, type UpdateErrorCode, type UpdateErrorData } from '../errors.js';
export type { ModelLoader, ModelRef } from '../modelRef.js';
export { replay, type UpdaterSnapshot } from '../log/replay.js';
export { verifyLog, type LogRecord, type LogVerification } from '../log/record.js';
export { formatRecord, summarize } from '../log/describe.js';
export type { ModelStore, ActivePointer } from '../store.js';
export { updaterMachine } from '../../machines/updater.machine.js';
export type { InstalledVersion, DownloadProgress, SessionResult, Outcome, UpdaterConfig } from '../../machines/types.js';
export { replayIntoInspector, type InspectTarget } from '../inspect/replayIntoInspector.js';
export { IdbTrustStore } from './idbTrustStore.js';
