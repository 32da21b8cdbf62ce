/**
 * The Node entry point: an updater whose versions, staging and event log are files under `dir`.
 */
import { join } from 'node:path';
import { createUpdater, type ModelUpdater, type ModelUpdaterOptions } from '../core/createUpdater.js';
import { UpdateError } from '../core/errors.js';
import { FileEventLog, type FileEventLogOptions } from './fileEventLog.js';
import { FsModelStore, LOG_FILE } from './fsModelStore.js';
import { FileTrustStore, TRUST_FILE } from './fileTrustStore.js';
import { acquireDirLock } from './dirLock.js';
import { createHttpFetch } from './httpFetch.js';
import { FileStagingArea } from './fileStagingArea.js';
import { createNodeTransport } from './nodeTransport.js';
import { assertProxySetting } from './proxy.js';
import { installId } from './installId.js';
import { assertBundledOutside, describeBundledFolder } from './bundledModel.js';

export * from '../core/createUpdater.js';

/**
 * Creates an updater for one model folder.
 * @example
 * const updater = createModelUpdater({ manifestUrl, dir, appVersion: '2.3.0', loader: { load, healthCheck } })
 * updater.on('progress', (p) => console.log(p.bytes, p.total))
 * await updater.start()
 */
export function createModelUpdater<Handle = unknown>(
  options: ModelUpdaterOptions<Handle> & {
    /** How long start() waits for another updater holding the folder before LOCKED. Default 0. */
    lockWaitMs?: number;
    /** The event log's segments and retention (see LogSegmentOptions), and `sync`, how it fsyncs (a seam for a slow disk). */
    log?: FileEventLogOptions;
  },
): ModelUpdater<Handle> {
  if (!options.dir) throw new UpdateError('INVALID_ARGUMENT', 'dir is required: the folder for model versions and the event log.');
  // A proxy option that is not an http:// URL is refused now, not at the first check.
  assertProxySetting(options.proxy);
  if (typeof options.bundled?.path === 'string' && options.bundled.path.length > 0) assertBundledOutside(options.dir, options.bundled.path);
  return createUpdater(options, {
    store: new FsModelStore(options.dir, options.now ? { now: options.now } : {}),
    describeBundled: describeBundledFolder,
    transport: createNodeTransport({ proxy: options.proxy }),
    staging: new FileStagingArea(options.dir),
    openLog: (now) => FileEventLog.open(join(options.dir, LOG_FILE), now, options.log),
    trust: new FileTrustStore(join(options.dir, TRUST_FILE)),
    lock: () => acquireDirLock(options.dir, { waitMs: options.lockWaitMs ?? 0 }),
    installId: () => installId(options.dir),
    fetch: createHttpFetch({ proxy: options.proxy }),
  });
}
