/**
 * model-updater for browsers (and Electron renderers): `import { createBrowserModelUpdater } from
 * 'model-updater/browser'`. Nothing here imports a Node built-in.
 */
export { createBrowserModelUpdater, type BrowserModelUpdater, type BrowserModelUpdaterOptions } from './createBrowserModelUpdater.js';
export { IdbModelStore, type IdbModelStoreOptions, type StorageEstimator, type BrowserBackend } from './idbModelStore.js';
export type { OpfsWorkerScript } from './opfsClient.js';
export { OpfsStagingArea } from './opfsStagingArea.js';
export { IdbEventLog, readIdbLog } from './idbEventLog.js';
export { holdLock } from './webLock.js';
export { fetchTransport } from './fetchTransport.js';
export { IdbStagingArea, type IdbStagingAreaOptions } from './idbStagingArea.js';
export type { Transport, TransportResponse } from '../core/ports/transport.js';
export type { StagingArea } from '../core/ports/stagingArea.js';
export {
  createUpdater,
  isSettled,
  type ModelUpdater,
  type UpdaterOptions,
  type UpdatePolicy,
  type UpdateResult,
  type UpdaterEvents,
  type UpdaterActor,
  type Unsubscribe,
  type Platform,
} from '../core/createUpdater.js';
export type { EventLog } from '../core/ports/eventLog.js';
export { UpdateError, isUpdateError, ERROR_CODES, type UpdateErrorCode, type UpdateErrorData } from '../core/errors.js';
export type { ModelLoader, ModelRef } from '../core/modelRef.js';
export { replay, type UpdaterSnapshot } from '../core/log/replay.js';
export { type LogRecord, type LogVerification } from '../core/log/record.js';
export { verifyLog } from '../core/log/chain.js';
export { domainEventOf, type DomainEvent, type DomainEventType } from '../core/log/domainEvents.js';
export { formatRecord, summarize } from '../core/log/describe.js';
export type { ModelStore, ActivePointer } from '../core/ports/modelStore.js';
export { updaterMachine } from '../../machines/updater.machine.js';
export type { InstalledVersion, DownloadProgress, SessionResult, Outcome, UpdaterConfig } from '../../machines/types.js';
export { replayIntoInspector, type InspectTarget } from '../inspect/replayIntoInspector.js';
export { IdbTrustStore } from './idbTrustStore.js';
