/**
 * The Node entry point: an updater whose versions, staging and event log are files under `dir`.
 */
import { join } from 'node:path';
import { createUpdater, type ModelUpdater, type ModelUpdaterOptions } from './createUpdater.js';
import { FileEventLog } from './log/fileEventLog.js';
import { FsModelStore, LOG_FILE } from './node/fsModelStore.js';

export * from './createUpdater.js';

/**
 * Creates an updater for one model folder.
 * @example
 * const updater = createModelUpdater({ manifestUrl, dir, appVersion: '2.3.0', loader: { load, healthCheck } })
 * updater.on('progress', (p) => console.log(p.bytes, p.total))
 * await updater.start()
 */
export function createModelUpdater<Handle = unknown>(options: ModelUpdaterOptions<Handle>): ModelUpdater<Handle> {
  return createUpdater(options, {
    store: new FsModelStore(options.dir),
    openLog: (now) => FileEventLog.open(join(options.dir, LOG_FILE), now),
  });
}
