/**
 * The browser storage adapter. Model bytes live in the Origin Private File System, written by a
 * dedicated worker (opfsStagingArea.ts) and installed by a rename (the switch moves no bytes); where
 * OPFS or sync access handles are missing, in IndexedDB chunks that become the installed file as they
 * are (a version's file is read as one Blob of its chunks, never copied). IndexedDB (idb-keyval) keeps
 * the active pointer, which file of which version is which content, the resume records and the event
 * log. See idbLayout.ts and opfsLayout.ts for the keys and names.
 */
import { del, get, promisifyRequest, set } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import { guardedIdb } from './idbStorageError.js';
import type { FileDigest } from '../../machines/types.js';
import { createSHA256 } from 'hash-wasm';
import type { ActivePointer, ContentCheck, GarbageReport, ModelStore } from '../core/ports/modelStore.js';
import { IdbStagingArea, readStagedChunks } from './idbStagingArea.js';
import { deleteRange, getAllInRange, getAllKeysInRange, openDatabases, prefixRange, type IdbDatabases, type StagedChunk } from './idbLayout.js';
import { BrowserStagingArea } from './browserStagingArea.js';
import { OpfsClient, type OpfsWorkerScript } from './opfsClient.js';
import { OpfsLayout, opfsFile, opfsList, opfsMove, opfsRemove } from './opfsLayout.js';
import { OpfsStagingArea } from './opfsStagingArea.js';

/** The parts of `navigator.storage` the store uses. */
export type StorageEstimator = Pick<StorageManager, 'estimate'> & Partial<Pick<StorageManager, 'persist' | 'persisted'>>;

export interface IdbModelStoreOptions {
  /** Names the databases (`model-updater:<name>:files|meta|log`) and the OPFS folder; one name per model. Default 'model'. */
  name?: string;
  /** IndexedDB chunks only: bytes of a download held in memory before they are written as one chunk. Default 1 MiB. */
  chunkBytes?: number;
  /** Quota and persistence; default `navigator.storage`. Without one, free space is reported as unlimited. */
  storage?: StorageEstimator;
  /** Ask the browser to keep this site's storage under pressure (`navigator.storage.persist()`). Default true. */
  persist?: boolean;
  /**
   * Keep model bytes in the Origin Private File System through a worker when the browser can (default
   * true); false keeps them in IndexedDB chunks (what a browser without OPFS sync access handles gets).
   */
  opfs?: boolean;
  /**
   * The OPFS worker's script: by default the one bundled into this package, started from a Blob URL.
   * A page whose Content-Security-Policy has no `worker-src blob:` serves
   * `dist/src/browser/opfsWorkerSource.js`'s script itself and passes `{ url }`.
   */
  opfsWorker?: OpfsWorkerScript;
}

/** Where a version's files are: the Origin Private File System, or IndexedDB chunks. */
export type BrowserBackend = 'opfs' | 'indexeddb';

/** An installed file kept as the IndexedDB chunks it was downloaded into (`['s', version, path, i]`). */
interface ChunkedContent {
  version: string;
  path: string;
  size: number;
}

const POINTER_KEY = 'pointer';
const MiB = 1024 * 1024;

const isChunked = (value: unknown): value is ChunkedContent => typeof value === 'object' && value !== null && !(value instanceof Blob) && 'version' in value && 'path' in value;

/** The key of a cached chunk index; names are checked as on Node (`<sha256>.<sizes>`). */
function chunkIndexKey(name: string): [string, string] {
  if (!/^[0-9a-f]{64}\.[0-9a-z-]+$/.test(name)) throw new UpdateError('INVALID_ARGUMENT', `"${name}" is not the name of a cached chunk index.`);
  return ['c', name];
}

export class IdbModelStore implements ModelStore {
  readonly location: string;
  readonly name: string;
  /** What `navigator.storage.persist()` answered in init(); undefined when it was not asked. */
  persisted: boolean | undefined;
  /** Where model bytes go, chosen in init(): 'opfs' when a worker with sync access handles works here. */
  backend: BrowserBackend | undefined;
  /** Why the store uses IndexedDB chunks when it does. */
  backendReason: string | undefined;
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
  /** Downloads in progress (Platform.staging): OPFS through the worker, or IndexedDB chunks. */
  readonly staging: BrowserStagingArea;
  private readonly db: IdbDatabases;
  private readonly layout: OpfsLayout;
  private readonly storage: StorageEstimator | undefined;
  private readonly persist: boolean;
  private readonly options: IdbModelStoreOptions;
  private client: OpfsClient | undefined;
  private choosing: Promise<void> | undefined;

  /**
   * @example
   * const store = new IdbModelStore({ name: 'asr' }); await store.init()
   * const file = await store.openFile('1.1.0', 'model.onnx')
   */
  constructor(options: IdbModelStoreOptions = {}) {
    this.options = options;
    this.name = options.name ?? 'model';
    this.db = openDatabases(this.name);
    this.layout = new OpfsLayout(this.name);
    this.location = `indexeddb:${this.db.prefix}`;
    this.staging = new BrowserStagingArea(new IdbStagingArea(this.db.files, options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }));
    this.storage = options.storage ?? (globalThis.navigator as Navigator | undefined)?.storage;
    this.persist = options.persist ?? true;
  }

  /**
   * Asks for persistent storage (best effort: the browser may say no, and the answer is kept in
   * `persisted` and logged with the start) and chooses where model bytes go (`backend`).
   */
  async init(): Promise<void> {
    this.choosing ??= this.chooseBackend();
    await this.choosing;
    if (!this.persist || !this.storage?.persist) return;
    this.persisted = (await this.storage.persisted?.()) || (await this.storage.persist().catch(() => false));
  }

  private async chooseBackend(): Promise<void> {
    const started = this.options.opfs === false ? 'OPFS was turned off (opfs: false)' : await OpfsClient.start(this.options.opfsWorker);
    if (typeof started === 'string') {
      this.backend = 'indexeddb';
      this.backendReason = started;
      return;
    }
    this.client = started;
    this.backend = 'opfs';
    const opfs = new OpfsStagingArea(started, this.db.files, this.layout);
    opfs.beforeWrite = this.staging.beforeWrite;
    this.staging.use(opfs);
  }

  /** Stops the OPFS worker (a later call starts it again). */
  close(): void {
    this.client?.terminate();
    this.client = undefined;
    this.choosing = undefined;
    this.staging.use(undefined);
  }

  /**
   * Free space for this site: `navigator.storage.estimate()`, checked against the browser itself on
   * OPFS, where a scratch file is grown to that size (the estimate's quota can be far above what the
   * browser will really take); unlimited when the browser tells nothing.
   */
  async freeBytes(): Promise<number> {
    if (!this.storage) return Number.MAX_SAFE_INTEGER;
    const { quota, usage } = await this.storage.estimate();
    if (quota === undefined) return Number.MAX_SAFE_INTEGER;
    const estimated = Math.max(0, quota - (usage ?? 0));
    const client = this.client;
    if (!client || estimated === 0) return estimated;
    const fits = async (bytes: number) => (await client.request({ op: 'room', bytes, scratch: this.layout.scratch })).value === true;
    try {
      if (await fits(estimated)) return estimated;
      // The largest size that fits, to a MiB.
      let low = 0;
      let high = estimated;
      while (high - low > MiB) {
        const middle = Math.floor((low + high) / 2);
        if (await fits(middle)) low = middle;
        else high = middle;
      }
      return low;
    } catch {
      return estimated;
    }
  }

  /** Bytes of downloads in progress for a version (what a resume will not fetch again). */
  async stagedBytes(version: string, path?: string): Promise<number> {
    const range = prefixRange(path === undefined ? ['s', version] : ['s', version, path]);
    const installed = await this.chunkedContents();
    const keys = await guardedIdb('read staged downloads', () => getAllKeysInRange(this.db.files, range));
    const values = await guardedIdb('read staged downloads', () => getAllInRange<StagedChunk | object>(this.db.files, range));
    let sum = values.reduce<number>((total, value, i) => {
      const key = keys[i] as string[];
      if (!('blob' in value) || installed.has(JSON.stringify([key[1], key[2]]))) return total;
      return total + (value as StagedChunk).blob.size;
    }, 0);
    if (this.backend === 'opfs') {
      const names = path === undefined ? await opfsList(this.layout.stagingDirs(version)) : [encodeURIComponent(path)];
      for (const name of names) {
        const handle = await opfsFile({ dirs: this.layout.stagingDirs(version), name });
        if (handle) sum += (await handle.getFile()).size;
      }
    }
    return sum;
  }

  /**
   * The OPFS file of stored content, looked for whatever the backend (versions installed through OPFS
   * stay readable when a later run keeps new ones in IndexedDB); undefined where there is no OPFS.
   */
  private async opfsContent(sha256: string): Promise<FileSystemFileHandle | undefined> {
    if (this.backend !== 'opfs' && typeof (globalThis.navigator as Navigator | undefined)?.storage?.getDirectory !== 'function') return undefined;
    return opfsFile(this.layout.content(sha256)).catch(() => undefined);
  }

  async hasContent(sha256: string): Promise<boolean> {
    if (await this.opfsContent(sha256)) return true;
    return (await getAllKeysInRange(this.db.files, IDBKeyRange.only(['b', sha256]))).length > 0;
  }

  /** The stored content named `sha256` as a Blob (an OPFS File, or the IndexedDB chunks as one Blob). */
  private async content(sha256: string): Promise<Blob | undefined> {
    const handle = await this.opfsContent(sha256);
    if (handle) return handle.getFile();
    const value = await get<Blob | ChunkedContent>(['b', sha256], this.db.files);
    if (value === undefined || value instanceof Blob) return value;
    if (!isChunked(value)) return undefined;
    const chunks = await readStagedChunks(this.db.files, value.version, value.path);
    return new Blob(chunks.map((chunk) => chunk.blob));
  }

  /** Hashes the stored content; one whose bytes do not match is deleted (and downloaded again). */
  async verifyContent(file: Pick<FileDigest, 'size' | 'sha256'>): Promise<ContentCheck> {
    const blob = await guardedIdb('read stored content', () => this.content(file.sha256));
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
    await guardedIdb('remove damaged content', async () => {
      await opfsRemove(this.layout.content(file.sha256).dirs, file.sha256).catch(() => undefined);
      await this.removeContent(file.sha256);
    });
    return 'discarded';
  }

  /**
   * `length` bytes at `position` of stored content (a held version's file): a slice of its OPFS `File`
   * or of the Blob of its IndexedDB chunks, read without touching the rest. Null when no such content
   * is stored; fewer bytes when the content ends first.
   * @example
   * const bytes = await store.readContent(file.sha256, 0, 65_536)
   */
  async readContent(sha256: string, position: number, length: number): Promise<Uint8Array | null> {
    return guardedIdb('read stored content', async () => {
      const blob = await this.content(sha256);
      if (!blob) return null;
      return new Uint8Array(await blob.slice(position, position + length).arrayBuffer());
    });
  }

  /**
   * A cached chunk index (`['c', name]` in the files database), by the name the differential download
   * gives it; null when none is cached.
   * @example
   * const bytes = await store.readChunkIndex(`${sha256}.65536-262144-1048576`)
   */
  async readChunkIndex(name: string): Promise<Uint8Array | null> {
    const key = chunkIndexKey(name);
    const bytes = await guardedIdb('read a cached chunk index', () => get<Uint8Array>(key, this.db.files));
    return bytes instanceof Uint8Array ? bytes : null;
  }

  /**
   * Caches a chunk index in the files database; collectGarbage removes it with its content.
   * @example
   * await store.writeChunkIndex(`${sha256}.65536-262144-1048576`, encodeChunkIndex(index))
   */
  async writeChunkIndex(name: string, bytes: Uint8Array): Promise<void> {
    const key = chunkIndexKey(name);
    await this.beforeWrite();
    await guardedIdb('cache a chunk index', () => set(key, bytes.slice(), this.db.files)) // a copy: a view would store its whole buffer;
  }

  async discardStaging(version?: string): Promise<void> {
    await this.beforeWrite();
    await guardedIdb('discard staged downloads', () => this.removeStaging(version));
  }

  /**
   * Installs a staged, verified version without copying a byte: on OPFS each staged file is renamed
   * into content/, in IndexedDB its chunks become the content as they are. The version's file list is
   * then written in one transaction: the version appears whole or not at all.
   */
  async promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void> {
    await this.beforeWrite();
    await guardedIdb(`install version ${version}`, async () => {
      if ((await this.listVersions()).includes(version) && (await this.versionComplete(version, files))) return; // an earlier run already promoted it
      const chunked: Array<[string, ChunkedContent]> = [];
      for (const file of files) {
        if (await this.hasContent(file.sha256)) continue;
        const staged = { version, path: file.path };
        if (this.backend === 'opfs' && (await opfsMove(this.layout.staged(staged), this.layout.content(file.sha256)))) continue;
        const chunks = await readStagedChunks(this.db.files, version, file.path);
        if (chunks.length === 0) {
          throw new UpdateError('STORAGE_FAILED', `Version ${version} is not fully staged in ${this.location} (${file.path} is missing); run the update again.`);
        }
        chunked.push([file.sha256, { version, path: file.path, size: chunks.at(-1)!.end }]);
      }
      const kept = new Set(chunked.map(([, content]) => content.path));
      const leftovers = (await getAllKeysInRange(this.db.files, prefixRange(['s', version]))).filter((key) => {
        const [, , path, index] = key as [string, string, string, number | string];
        // Chunks that are now installed content stay; their resume record and hash state go.
        return !(kept.has(path) && typeof index === 'number');
      });
      await this.db.files('readwrite', (store) => {
        store.delete(prefixRange(['v', version])); // leftovers of an earlier failed install
        for (const [sha256, content] of chunked) store.put(content, ['b', sha256]);
        for (const file of files) store.put(file.sha256, ['v', version, file.path]);
        for (const key of leftovers) store.delete(key);
        return promisifyRequest(store.transaction);
      });
      if (this.backend === 'opfs') await opfsRemove(this.layout.stagingDirs(), encodeURIComponent(version));
    });
  }

  /** Whether every file of the version is recorded and its content is there. */
  private async versionComplete(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<boolean> {
    for (const file of files) {
      if ((await get<string>(['v', version, file.path], this.db.files)) !== file.sha256) return false;
      if (!(await this.hasContent(file.sha256))) return false;
    }
    return true;
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
      const installed = await this.chunkedContents();
      const stagedKeys = await getAllKeysInRange(this.db.files, prefixRange(['s']));
      const stagedVersions = new Set(
        stagedKeys.filter((key) => !installed.has(JSON.stringify([(key as string[])[1], (key as string[])[2]]))).map((key) => (key as string[])[1]!),
      );
      if (this.backend === 'opfs') for (const name of await opfsList(this.layout.stagingDirs())) stagedVersions.add(decodeURIComponent(name));
      for (const version of stagedVersions) {
        if (keepStaging.includes(version)) continue;
        report.freedBytes += await this.stagedBytes(version);
        await this.removeStaging(version);
        report.removedStaging.push(version);
      }
      // Content no remaining version refers to: its chunks or OPFS file are released too.
      const used = new Set(await getAllInRange<string>(this.db.files, prefixRange(['v'])));
      for (const key of await getAllKeysInRange(this.db.files, prefixRange(['b']))) {
        const sha256 = (key as string[])[1]!;
        if (used.has(sha256)) continue;
        report.freedBytes += (await this.content(sha256))?.size ?? 0;
        await this.removeContent(sha256);
      }
      // A cached chunk index whose content no version refers to describes nothing any more.
      const indexKeys = (await getAllKeysInRange(this.db.files, prefixRange(['c']))).filter((key) => !used.has((key as string[])[1]!.split('.')[0]!));
      if (indexKeys.length) {
        await this.db.files('readwrite', (store) => {
          for (const key of indexKeys) store.delete(key);
          return promisifyRequest(store.transaction);
        });
      }
      if (this.backend === 'opfs') {
        const dirs = this.layout.content('').dirs;
        for (const sha256 of await opfsList(dirs)) {
          if (used.has(sha256)) continue;
          report.freedBytes += (await (await opfsFile(this.layout.content(sha256)))?.getFile())?.size ?? 0;
          await opfsRemove(dirs, sha256);
        }
      }
      return report;
    });
  }

  /** `[version, path]` (as JSON) of every staged file that is installed content now. */
  private async chunkedContents(): Promise<Set<string>> {
    const values = await getAllInRange<unknown>(this.db.files, prefixRange(['b']));
    return new Set(values.filter(isChunked).map((content) => JSON.stringify([content.version, content.path])));
  }

  /** Removes downloads in progress (of one version, or all), leaving staged chunks that are installed content. */
  private async removeStaging(version?: string): Promise<void> {
    const installed = await this.chunkedContents();
    const keys = await getAllKeysInRange(this.db.files, prefixRange(version === undefined ? ['s'] : ['s', version]));
    const doomed = keys.filter((key) => !installed.has(JSON.stringify([(key as string[])[1], (key as string[])[2]])));
    if (doomed.length) {
      await this.db.files('readwrite', (store) => {
        for (const key of doomed) store.delete(key);
        return promisifyRequest(store.transaction);
      });
    }
    if (this.backend === 'opfs') {
      if (version === undefined) await opfsRemove(this.layout.storeDirs, 'staging');
      else await opfsRemove(this.layout.stagingDirs(), encodeURIComponent(version));
    }
  }

  /** Deletes the IndexedDB content named `sha256` and the chunks it is made of. */
  private async removeContent(sha256: string): Promise<void> {
    const value = await get<unknown>(['b', sha256], this.db.files);
    if (isChunked(value)) await deleteRange(this.db.files, prefixRange(['s', value.version, value.path]));
    await del(['b', sha256], this.db.files);
  }

  /** Not a folder: an identifier naming the version in this store. Read its files with openFile(). */
  versionPath(version: string): string {
    return `${this.location}/versions/${version}`;
  }

  /**
   * One file of an installed version, without a copy: the OPFS `File` itself, or the Blob of its
   * IndexedDB chunks. Read it as a stream, or `arrayBuffer()` it into the runtime that loads it.
   * @example
   * const session = await ort.InferenceSession.create(new Uint8Array(await (await store.openFile(model.version, 'model.onnx')).arrayBuffer()))
   */
  async openFile(version: string, path: string): Promise<Blob> {
    const blob = await guardedIdb(`read ${path} of version ${version}`, async () => {
      const sha256 = await get<string>(['v', version, path], this.db.files);
      return sha256 === undefined ? undefined : this.content(sha256);
    });
    if (!blob) throw new UpdateError('STORAGE_FAILED', `Version ${version} has no file "${path}" in ${this.location}; check the path against the manifest.`);
    return blob;
  }

  /**
   * The same as openFile() (kept for existing hosts).
   * @example
   * const bytes = new Uint8Array(await (await store.readFile(model.version, 'model.onnx')).arrayBuffer())
   */
  readFile(version: string, path: string): Promise<Blob> {
    return this.openFile(version, path);
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
      if (typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function') {
        await opfsRemove(this.layout.storeDirs.slice(0, -1), this.layout.storeDirs.at(-1)!).catch(() => undefined);
      }
    });
  }
}
