/**
 * The browser entry point: an updater whose versions, staging and event log live in IndexedDB, guarded
 * against other tabs by a Web Lock.
 */
import { createUpdater, type ModelUpdater, type UpdaterOptions } from '../createUpdater.js';
import { IdbEventLog } from './idbEventLog.js';
import { IdbModelStore, type IdbModelStoreOptions } from './idbModelStore.js';
import { holdLock } from './webLock.js';

export interface BrowserModelUpdaterOptions<Handle = unknown> extends UpdaterOptions<Handle>, IdbModelStoreOptions {
  /** Cross-tab lock manager; default `navigator.locks`. */
  locks?: LockManager;
}

export interface BrowserModelUpdater<Handle = unknown> extends ModelUpdater<Handle> {
  /** The IndexedDB store: `store.readFile(version, path)` gives a model file as a Blob. */
  readonly store: IdbModelStore;
  /** Resolves when every event-log record so far is committed to IndexedDB. */
  flush(): Promise<void>;
}

/**
 * Creates an updater whose models and log are in IndexedDB (databases `model-updater:<name>:*`).
 * `start()` fails with LOCKED while another tab runs the updater for the same name.
 * @example
 * const updater = createBrowserModelUpdater({
 *   manifestUrl: 'https://models.example.com/asr/manifest.json', name: 'asr',
 *   loader: { load: async (model) => loadOnnx(await updater.store.readFile(model.version, 'model.onnx')) },
 * })
 * await updater.start()
 */
export function createBrowserModelUpdater<Handle = unknown>(options: BrowserModelUpdaterOptions<Handle>): BrowserModelUpdater<Handle> {
  const store = new IdbModelStore(options);
  let log: IdbEventLog | undefined;
  const inner = createUpdater(options, {
    store,
    openLog: async (now) => {
      log = await IdbEventLog.open(store.name, now);
      const opened = log;
      store.beforeWrite = () => opened.flush();
      return opened;
    },
  });
  const locks = options.locks ?? (globalThis.navigator as Navigator | undefined)?.locks;
  let release: (() => void) | undefined;
  const own = {
    store,
    async start(): Promise<void> {
      release ??= await holdLock(locks, `model-updater:${store.name}`);
      try {
        await inner.start();
      } catch (error) {
        release();
        release = undefined;
        throw error;
      }
    },
    stop(): void {
      inner.stop();
      release?.();
      release = undefined;
    },
    async flush(): Promise<void> {
      await log?.flush();
    },
  };
  // Every other method and getter is the core updater's (its closures do not depend on `this`).
  return Object.assign(Object.create(inner) as ModelUpdater<Handle>, own);
}
