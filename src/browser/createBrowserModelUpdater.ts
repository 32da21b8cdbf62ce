/**
 * The browser entry point: an updater whose model bytes live in the Origin Private File System (written
 * by a worker; IndexedDB chunks where OPFS is missing) and whose pointer, event log, resume records and
 * trust state live in IndexedDB, guarded against other tabs by a Web Lock.
 */
import { createUpdater, type ModelUpdater, type UpdaterOptions } from '../core/createUpdater.js';
import { fetchTransport } from './fetchTransport.js';
import { IdbEventLog } from './idbEventLog.js';
import { IdbModelStore, type IdbModelStoreOptions } from './idbModelStore.js';
import { IdbTrustStore } from './idbTrustStore.js';
import { holdLock } from './webLock.js';

export interface BrowserModelUpdaterOptions<Handle = unknown> extends UpdaterOptions<Handle>, IdbModelStoreOptions {
  /** Cross-tab lock manager; default `navigator.locks`. */
  locks?: LockManager;
  /** Same as `download.stallTimeoutMs` (kept for existing hosts). */
  stallTimeoutMs?: number;
}

export interface BrowserModelUpdater<Handle = unknown> extends ModelUpdater<Handle> {
  /** The store: `store.openFile(version, path)` gives a model file as a File/Blob, without a copy. */
  readonly store: IdbModelStore;
  /** Resolves when every event-log record so far is committed to IndexedDB. */
  flush(): Promise<void>;
}

/**
 * Creates an updater whose models are in OPFS (`model-updater/<name>/`) and whose log is in IndexedDB
 * (databases `model-updater:<name>:*`); `opfs: false` keeps the models in IndexedDB too.
 * `start()` fails with LOCKED while another tab or worker runs the updater for the same name.
 * @example
 * const updater = createBrowserModelUpdater({
 *   manifestUrl: 'https://models.example.com/asr/manifest.json', name: 'asr', trustedKeys: [publicKey],
 *   loader: { load: async (model) => loadOnnx(await updater.store.openFile(model.version, 'model.onnx')) },
 * })
 * await updater.start()
 */
/** The browser's default `download.connections`. */
export const BROWSER_CONNECTIONS = 1;

export function createBrowserModelUpdater<Handle = unknown>(options: BrowserModelUpdaterOptions<Handle>): BrowserModelUpdater<Handle> {
  const stallTimeoutMs = options.stallTimeoutMs ?? options.download?.stallTimeoutMs;
  const store = new IdbModelStore(options);
  const locks = options.locks ?? (globalThis.navigator as Navigator | undefined)?.locks;
  let log: IdbEventLog | undefined;
  // One connection for whole files unless the host asks for more: in order, the OPFS worker hashes the
  // bytes as they arrive; over parallel ranges the page thread reads them back and hashes them, which
  // bench:browser measured 4x slower on a fast link. Differential spans still use fetchSpans.
  const download = { connections: BROWSER_CONNECTIONS, ...options.download, ...(stallTimeoutMs === undefined ? {} : { stallTimeoutMs }) };
  const core = createUpdater({ ...options, download }, {
    store,
    transport: fetchTransport(),
    staging: store.staging,
    lock: () => holdLock(locks, `model-updater:${store.name}`),
    openLog: async (now) => {
      const opened = await IdbEventLog.open(store.name, now, options.log);
      log = opened;
      store.beforeWrite = () => opened.flush();
      return opened;
    },
    trust: new IdbTrustStore(store.name),
  });
  const own = {
    store,
    /** Starts the updater; when it cannot (LOCKED by another tab, ...), the OPFS worker is stopped again. */
    async start(): Promise<void> {
      try {
        await core.start();
      } catch (error) {
        store.close();
        throw error;
      }
    },
    /** Stops the updater and the OPFS worker (start() starts both again). */
    stop(): void {
      core.stop();
      store.close();
    },
    async flush(): Promise<void> {
      await log?.flush();
    },
  };
  // Every other method and getter is the core updater's (its closures do not depend on `this`).
  return Object.assign(Object.create(core) as ModelUpdater<Handle>, own);
}
