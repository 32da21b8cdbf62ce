/**
 * The browser storage adapter: versions, staging and the active pointer in IndexedDB (idb-keyval custom
 * stores), model files as Blobs. See idbLayout.ts for the keys.
 */
import { del, get, promisifyRequest, set } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import { guardedIdb } from './idbStorageError.js';
import type { FileDigest } from '../../machines/types.js';
import { createSHA256 } from 'hash-wasm';
import type { ActivePointer, ContentCheck, GarbageReport, ModelStore } from '../core/ports/modelStore.js';
import { IdbStagingArea, readStagedChunks } from './idbStagingArea.js';
import { deleteRange, getAllInRange, getAllKeysInRange, openDatabases, prefixRange, type IdbDatabases, type StagedChunk } from './idbLayout.js';

/** The parts of `navigator.storage` the store uses. */
export type StorageEstimator = Pick<StorageManager, 'estimate'> & Partial<Pick<StorageManager, 'persist' | 'persisted'>>;

export interface IdbModelStoreOptions {
  /** Names the databases (`model-updater:<name>:files|meta|log`); one name per model. Default 'model'. */
  name?: string;
  /** Bytes of a download held in memory before they are written as one chunk. Default 1 MiB. */
  chunkBytes?: number;
  /** Quota and persistence; default `navigator.storage`. Without one, free space is reported as unlimited. */
  storage?: StorageEstimator;
  /** Ask the browser to keep this site's storage under pressure (`navigator.storage.persist()`). Default true. */
  persist?: boolean;
}

const POINTER_KEY = 'pointer';


export class IdbModelStore implements ModelStore {
  readonly location: string;
  readonly name: string;
  /** What `navigator.storage.persist()` answered in init(); undefined when it was not asked. */
  persisted: boolean | undefined;
  /**
   * Awaited before every write: the browser entry makes it flush the event log, so the records of the
   * events that led to a write are in IndexedDB before the write itself.
   */
  get beforeWrite(): () => Promise<void> {
    return this.staging.beforeWrite;
  }
  set beforeWrite(flush: () => Promise<void>) {
    this.staging.beforeWrite = flush;
  }
  /** Downloads in progress, as IndexedDB chunks (Platform.staging). */
  readonly staging: IdbStagingArea;
  private readonly db: IdbDatabases;
  private readonly storage: StorageEstimator | undefined;
  private readonly persist: boolean;

  /**
   * @example
   * const store = new IdbModelStore({ name: 'asr' }); await store.init()
   * const blob = await store.readFile('1.1.0', 'model.onnx')
   */
  constructor(options: IdbModelStoreOptions = {}) {
    this.name = options.name ?? 'model';
    this.db = openDatabases(this.name);
    this.location = `indexeddb:${this.db.prefix}`;
    this.staging = new IdbStagingArea(this.db.files, options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes });
    this.storage = options.storage ?? (globalThis.navigator as Navigator | undefined)?.storage;
    this.persist = options.persist ?? true;
  }

  /** Asks for persistent storage (best effort: the browser may say no, and the answer is kept in `persisted`). */
  async init(): Promise<void> {
    if (!this.persist || !this.storage?.persist) return;
    this.persisted = (await this.storage.persisted?.()) || (await this.storage.persist().catch(() => false));
  }

  /** Quota minus usage from `navigator.storage.estimate()`; unlimited when the browser tells nothing. */
  async freeBytes(): Promise<number> {
    if (!this.storage) return Number.MAX_SAFE_INTEGER;
    const { quota, usage } = await this.storage.estimate();
    if (quota === undefined) return Number.MAX_SAFE_INTEGER;
    return Math.max(0, quota - (usage ?? 0));
  }

  /** Bytes of downloads in progress for a version (what a resume will not fetch again). */
  async stagedBytes(version: string, path?: string): Promise<number> {
    const range = prefixRange(path === undefined ? ['s', version] : ['s', version, path]);
    const values = await guardedIdb('read staged downloads', () => getAllInRange<StagedChunk | object>(this.db.files, range));
    return values.reduce<number>((sum, value) => sum + ('blob' in value ? (value as StagedChunk).blob.size : 0), 0);
  }

  async hasContent(sha256: string): Promise<boolean> {
    return (await getAllKeysInRange(this.db.files, IDBKeyRange.only(['b', sha256]))).length > 0;
  }

  /** Hashes the stored Blob; one whose bytes do not match is deleted (and downloaded again). */
  async verifyContent(file: Pick<FileDigest, 'size' | 'sha256'>): Promise<ContentCheck> {
    const blob = await guardedIdb('read stored content', () => get<Blob>(['b', file.sha256], this.db.files));
    if (!blob) return 'missing';
    if (blob.size === file.size) {
      const hasher = await createSHA256();
      hasher.init();
      const reader = blob.stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hasher.update(value);
      }
      if (hasher.digest('hex') === file.sha256) return 'verified';
    }
    await this.beforeWrite();
    await guardedIdb('remove damaged content', () => del(['b', file.sha256], this.db.files));
    return 'discarded';
  }

  async discardStaging(version?: string): Promise<void> {
    await this.beforeWrite();
    await guardedIdb('discard staged downloads', () => deleteRange(this.db.files, prefixRange(version === undefined ? ['s'] : ['s', version])));
  }

  /**
   * Joins each staged file's chunks into one content Blob and records the version's files, in one
   * transaction: the version appears whole or not at all.
   */
  async promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void> {
    await this.beforeWrite();
    await guardedIdb(`install version ${version}`, async () => {
      const staged = await getAllKeysInRange(this.db.files, prefixRange(['s', version]));
      if (staged.length === 0 && (await this.listVersions()).includes(version)) return; // an earlier run already promoted it
      const contents: Array<[string, Blob]> = [];
      for (const file of files) {
        if (await this.hasContent(file.sha256)) continue;
        const chunks = await readStagedChunks(this.db.files, version, file.path);
        if (chunks.length === 0) {
          throw new UpdateError('STORAGE_FAILED', `Version ${version} is not fully staged in ${this.location} (${file.path} is missing); run the update again.`);
        }
        contents.push([file.sha256, new Blob(chunks.map((chunk) => chunk.blob))]);
      }
      await this.db.files('readwrite', (store) => {
        store.delete(prefixRange(['v', version])); // leftovers of an earlier failed install
        for (const [sha256, blob] of contents) store.put(blob, ['b', sha256]);
        for (const file of files) store.put(file.sha256, ['v', version, file.path]);
        store.delete(prefixRange(['s', version]));
        return promisifyRequest(store.transaction);
      });
    });
  }

  async collectGarbage(keep: readonly string[], keepStaging: readonly string[] = []): Promise<GarbageReport> {
    await this.beforeWrite();
    return guardedIdb('clean up old versions', async () => {
      const report: GarbageReport = { removedVersions: [], removedStaging: [], freedBytes: 0 };
      for (const version of await this.listVersions()) {
        if (keep.includes(version)) continue;
        await deleteRange(this.db.files, prefixRange(['v', version]));
        report.removedVersions.push(version);
      }
      const stagedVersions = new Set((await getAllKeysInRange(this.db.files, prefixRange(['s']))).map((key) => (key as string[])[1]!));
      for (const version of stagedVersions) {
        if (keepStaging.includes(version)) continue;
        report.freedBytes += await this.stagedBytes(version);
        await deleteRange(this.db.files, prefixRange(['s', version]));
        report.removedStaging.push(version);
      }
      // Content no remaining version refers to.
      const used = new Set(await getAllInRange<string>(this.db.files, prefixRange(['v'])));
      for (const key of await getAllKeysInRange(this.db.files, prefixRange(['b']))) {
        const sha256 = (key as string[])[1]!;
        if (used.has(sha256)) continue;
        const blob = await get<Blob>(key, this.db.files);
        await del(key, this.db.files);
        report.freedBytes += blob?.size ?? 0;
      }
      return report;
    });
  }

  /** Not a folder: an identifier naming the version in IndexedDB. Read its files with readFile(). */
  versionPath(version: string): string {
    return `${this.location}/versions/${version}`;
  }

  /**
   * One file of an installed version, as a Blob.
   * @example
   * const bytes = new Uint8Array(await (await store.readFile(model.version, 'model.onnx')).arrayBuffer())
   */
  async readFile(version: string, path: string): Promise<Blob> {
    const blob = await guardedIdb(`read ${path} of version ${version}`, async () => {
      const sha256 = await get<string>(['v', version, path], this.db.files);
      return sha256 === undefined ? undefined : get<Blob>(['b', sha256], this.db.files);
    });
    if (!blob) throw new UpdateError('STORAGE_FAILED', `Version ${version} has no file "${path}" in ${this.location}; check the path against the manifest.`);
    return blob;
  }

  async removeVersion(version: string): Promise<void> {
    await this.beforeWrite();
    await guardedIdb(`remove version ${version}`, () => deleteRange(this.db.files, prefixRange(['v', version])));
  }

  async listVersions(): Promise<string[]> {
    const keys = await guardedIdb('list versions', () => getAllKeysInRange(this.db.files, prefixRange(['v'])));
    return [...new Set(keys.map((key) => (key as [string, string, string])[1]))];
  }

  async readPointer(): Promise<ActivePointer | null> {
    return (await guardedIdb('read the active pointer', () => get<ActivePointer>(POINTER_KEY, this.db.meta))) ?? null;
  }

  /** One IndexedDB transaction: atomic, and committed when it resolves. */
  async writePointer(pointer: ActivePointer): Promise<void> {
    await this.beforeWrite();
    await guardedIdb('switch the active pointer', () => set(POINTER_KEY, pointer, this.db.meta));
  }

  /** Deletes the pointer, every version, all content and every download of this store (not its event log). */
  async clear(): Promise<void> {
    await guardedIdb('clear the store', async () => {
      await del(POINTER_KEY, this.db.meta);
      await this.db.files('readwrite', (store) => {
        store.clear();
        return promisifyRequest(store.transaction);
      });
    });
  }
}
