/**
 * A ModelStore in memory that behaves like the file store (content-addressed blobs, staging kept for
 * resume, the pointer as the one commit point) and keeps two images of its disk: what was written and
 * what was synced. A crash keeps only the synced image, as a power cut does; faults make writes fail
 * with ENOSPC or EIO, and a small capacity fills the disk.
 *
 * Durability follows FsModelStore: the pointer is written atomically and synced; a finished download is
 * synced, a partial one is not; promote syncs the blobs and versions; deletions (discardStaging,
 * removeVersion, collectGarbage) are not synced, so a crash may bring deleted files back. Errors are typed
 * where FsModelStore types them and raw errno-style errors where FsModelStore lets fs errors through.
 */
import { createHash } from 'node:crypto';
import type { FileDigest, InstalledVersion } from '../../machines/types.js';
import { UpdateError } from '../errors.js';
import type { ActivePointer, FetchRequest, FetchResult, GarbageReport, ModelStore } from '../store.js';
import { storageError } from '../storageError.js';
import type { MemoryUpdateService } from './memoryUpdateService.js';

/** One image of the simulated disk. */
interface DiskImage {
  pointer: ActivePointer | null;
  blobs: Map<string, Uint8Array>;
  /** version → (path → sha256) */
  versions: Map<string, Map<string, string>>;
  /** version → (path → bytes so far) */
  staging: Map<string, Map<string, Uint8Array>>;
}

/** A write that fails: the `after`-th write from now (0: the next), once or from then on. */
export interface WriteFault {
  code: 'ENOSPC' | 'EIO';
  after: number;
  mode: 'once' | 'from-then-on';
  /** Count only the writes of this method (e.g. 'promote', 'writePointer'). */
  only?: 'fetchToStaging' | 'discardStaging' | 'promote' | 'removeVersion' | 'collectGarbage' | 'writePointer';
}

export interface MemoryModelStoreOptions {
  /** Disk size in bytes (blobs and staging count). Default 256 MiB. */
  capacity?: number;
  /** Timer source for the stall timeout (the simulation's clock). */
  timers: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(id: unknown): void };
  /** No byte for this long fails a transfer with DOWNLOAD_STALLED. Default 30 000 ms. */
  stallTimeoutMs?: number;
}

const WRITES = 'fetchToStaging discardStaging promote removeVersion collectGarbage writePointer';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function emptyImage(): DiskImage {
  return { pointer: null, blobs: new Map(), versions: new Map(), staging: new Map() };
}

function cloneImage(image: DiskImage): DiskImage {
  return {
    pointer: image.pointer === null ? null : structuredClone(image.pointer),
    blobs: new Map(image.blobs),
    versions: new Map([...image.versions].map(([v, files]) => [v, new Map(files)])),
    staging: new Map([...image.staging].map(([v, files]) => [v, new Map(files)])),
  };
}

function errno(code: 'ENOSPC' | 'EIO', what: string): Error {
  const text = code === 'ENOSPC' ? 'no space left on device' : 'i/o error';
  return Object.assign(new Error(`${code}: ${text} (simulated), ${what}`), { code });
}

/**
 * @example
 * const store = new MemoryModelStore(service, { timers: clock })
 * store.failWrites({ code: 'EIO', after: 2, mode: 'once' })
 * store.crash({ dropUnsynced: true })
 */
export class MemoryModelStore implements ModelStore {
  readonly location = 'memory://models';
  capacity: number;
  private written = emptyImage();
  private synced = emptyImage();
  private writes = 0;
  private fault: { code: WriteFault['code']; at: number; mode: WriteFault['mode']; only: string | undefined; seen: number } | null = null;
  /** Writes that failed by injection, for reports. */
  readonly failed: string[] = [];

  constructor(
    private readonly service: MemoryUpdateService,
    private readonly options: MemoryModelStoreOptions,
  ) {
    this.capacity = options.capacity ?? 256 * 1024 * 1024;
  }

  // ---- fault injection -------------------------------------------------------------------------

  failWrites(fault: WriteFault): void {
    this.fault = { code: fault.code, at: 1 + fault.after, mode: fault.mode, only: fault.only, seen: 0 };
  }

  heal(): void {
    this.fault = null;
  }

  /** A power cut: keeps the synced image (or, `dropUnsynced: false`, everything written). */
  crash({ dropUnsynced }: { dropUnsynced: boolean }): void {
    if (dropUnsynced) this.written = cloneImage(this.synced);
    else this.synced = cloneImage(this.written);
  }

  /** Whether anything written is not yet durable. */
  hasUnsynced(): boolean {
    return JSON.stringify(summary(this.written)) !== JSON.stringify(summary(this.synced));
  }

  private write(name: string): void {
    if (!WRITES.includes(name)) return;
    this.writes++;
    const fault = this.fault;
    if (!fault || (fault.only !== undefined && fault.only !== name)) return;
    fault.seen++;
    if (fault.seen < fault.at || (fault.mode === 'once' && fault.seen > fault.at)) return;
    this.failed.push(name);
    throw errno(fault.code, name);
  }

  // ---- inspection, for invariants -----------------------------------------------------------------

  usedBytes(): number {
    let used = 0;
    for (const blob of this.written.blobs.values()) used += blob.byteLength;
    for (const files of this.written.staging.values()) for (const bytes of files.values()) used += bytes.byteLength;
    return used;
  }

  /** Why an installed version does not verify (a missing or damaged file), or null when it does. */
  verifyVersion(version: InstalledVersion): string | null {
    const files = this.written.versions.get(version.version);
    if (!files) return `version ${version.version} is not in the store`;
    for (const file of version.files) {
      if (files.get(file.path) !== file.sha256) return `${version.version}/${file.path} is not the file the pointer names`;
      const blob = this.written.blobs.get(file.sha256);
      if (!blob) return `${version.version}/${file.path}: its content is missing`;
      if (blob.byteLength !== file.size || sha256(blob) !== file.sha256) return `${version.version}/${file.path} does not match its SHA-256`;
    }
    return null;
  }

  /** The files of a version, as a host's load would read them. */
  readVersion(version: string): Map<string, Uint8Array> | null {
    const files = this.written.versions.get(version);
    if (!files) return null;
    return new Map([...files].map(([path, hash]) => [path, this.written.blobs.get(hash) ?? new Uint8Array()]));
  }

  stagedVersions(): string[] {
    return [...this.written.staging.keys()];
  }

  // ---- ModelStore ----------------------------------------------------------------------------------

  async init(): Promise<void> {}

  async freeBytes(): Promise<number> {
    return Math.max(0, this.capacity - this.usedBytes());
  }

  async missingBytes(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'size' | 'sha256'>>): Promise<number> {
    let missing = 0;
    for (const file of files) {
      if (this.written.blobs.has(file.sha256)) continue;
      const partial = this.written.staging.get(version)?.get(file.path)?.byteLength ?? 0;
      missing += Math.max(0, file.size - partial);
    }
    return missing;
  }

  async fetchToStaging(request: FetchRequest): Promise<FetchResult> {
    const { file, version, signal } = request;
    try {
      this.write('fetchToStaging');
    } catch (error) {
      throw storageError(error, `write ${file.path}`);
    }
    if (this.written.blobs.has(file.sha256)) return { path: file.path, size: file.size, sha256: file.sha256, bytesFetched: 0, resumedFrom: 0 };
    if (signal.aborted) throw cancelled();
    const staged = this.written.staging.get(version) ?? new Map<string, Uint8Array>();
    this.written.staging.set(version, staged);
    let part = staged.get(file.path) ?? new Uint8Array();
    if (part.byteLength > file.size) part = new Uint8Array();
    let served;
    try {
      served = await this.service.serve(request.url, part.byteLength, signal);
    } catch (error) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `Could not download from ${new URL(request.url).host} (${(error as Error).message}); check the connection. Any partial file is kept and the next attempt resumes it.`, { cause: error });
    }
    if (served.status === 503 || served.status === 429) {
      throw new UpdateError('SERVICE_UNAVAILABLE', `${request.url} answered ${served.status}; try again later.`, served.retryAfterMs === undefined ? {} : { retryAfterMs: served.retryAfterMs });
    }
    if (served.status !== 200 && served.status !== 206) {
      throw new UpdateError('DOWNLOAD_FAILED', `${request.url} answered ${served.status}; check the URL in the manifest and the access rights.`);
    }
    if (served.status === 200) part = new Uint8Array();
    if (served.total !== file.size) {
      staged.delete(file.path);
      throw new UpdateError('SIZE_MISMATCH', `The manifest says ${request.url} is ${file.size} bytes but the server says it holds ${served.total} bytes; the partial file was deleted.`);
    }
    const resumedFrom = part.byteLength;
    let fetched = 0;
    const iterator = served.body[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.withStallTimeout(iterator.next(), request.url, signal);
      } catch (error) {
        if (error instanceof UpdateError) throw error;
        throw new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${new URL(request.url).host} closed before the whole file arrived (${(error as Error).message}); the partial file is kept and the next attempt resumes it.`, { cause: error });
      }
      if (next.done) break;
      const chunk = next.value;
      if (part.byteLength + chunk.byteLength > file.size) {
        staged.delete(file.path);
        throw new UpdateError('SIZE_MISMATCH', `${request.url} sent more than the ${file.size} bytes the manifest says; the partial file was deleted.`);
      }
      if (chunk.byteLength > this.capacity - this.usedBytes()) {
        throw storageError(errno('ENOSPC', `write ${file.path}`), `write ${file.path}`);
      }
      const grown = new Uint8Array(part.byteLength + chunk.byteLength);
      grown.set(part);
      grown.set(chunk, part.byteLength);
      part = grown;
      staged.set(file.path, part); // written, not synced: a crash may lose it
      fetched += chunk.byteLength;
      request.onBytes(chunk.byteLength);
    }
    if (part.byteLength < file.size) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `The connection ended after ${part.byteLength} of ${file.size} bytes; the partial file is kept and the next attempt resumes it.`);
    }
    // The finished file is fsynced before the call returns.
    const durable = this.synced.staging.get(version) ?? new Map<string, Uint8Array>();
    durable.set(file.path, part);
    this.synced.staging.set(version, durable);
    return { path: file.path, size: part.byteLength, sha256: sha256(part), bytesFetched: fetched, resumedFrom };
  }

  private withStallTimeout<T>(next: Promise<T>, url: string, signal: AbortSignal): Promise<T> {
    const { timers } = this.options;
    const ms = this.options.stallTimeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => finish(() => reject(cancelled()));
      const timer = timers.setTimeout(
        () => finish(() => reject(new UpdateError('DOWNLOAD_STALLED', `${new URL(url).host} sent nothing for ${ms} ms; the partial file is kept and the next attempt resumes it.`))),
        ms,
      );
      let done = false;
      function finish(settle: () => void) {
        if (done) return;
        done = true;
        timers.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        settle();
      }
      signal.addEventListener('abort', onAbort, { once: true });
      next.then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => finish(() => reject(error)),
      );
    });
  }

  async discardStaging(version?: string): Promise<void> {
    this.write('discardStaging');
    if (version === undefined) this.written.staging.clear();
    else this.written.staging.delete(version);
  }

  async promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void> {
    try {
      this.write('promote');
    } catch (error) {
      throw storageError(error, `move version ${version} into place`);
    }
    const staged = this.written.staging.get(version);
    if (!staged && this.written.versions.has(version)) return; // an earlier run already promoted it
    const assembled = new Map<string, string>();
    for (const file of files) {
      if (!this.written.blobs.has(file.sha256)) {
        const bytes = staged?.get(file.path);
        if (!bytes) throw new UpdateError('STORAGE_FAILED', `Version ${version} is not fully staged in ${this.location} (${file.path} is missing); run the update again.`);
        this.written.blobs.set(file.sha256, bytes);
      }
      assembled.set(file.path, file.sha256);
    }
    this.written.versions.set(version, assembled);
    this.written.staging.delete(version);
    // fsync of blobs/, versions/ and staging/: their entries are durable now.
    this.synced.blobs = new Map(this.written.blobs);
    this.synced.versions = new Map([...this.written.versions].map(([v, f]) => [v, new Map(f)]));
    this.synced.staging.delete(version);
  }

  async collectGarbage(keep: readonly string[], keepStaging: readonly string[] = []): Promise<GarbageReport> {
    this.write('collectGarbage');
    const report: GarbageReport = { removedVersions: [], removedStaging: [], freedBytes: 0 };
    for (const version of [...this.written.versions.keys()]) {
      if (keep.includes(version)) continue;
      this.written.versions.delete(version);
      report.removedVersions.push(version);
    }
    for (const [version, files] of [...this.written.staging]) {
      if (keepStaging.includes(version)) continue;
      for (const bytes of files.values()) report.freedBytes += bytes.byteLength;
      this.written.staging.delete(version);
      report.removedStaging.push(version);
    }
    const used = new Set([...this.written.versions.values()].flatMap((files) => [...files.values()]));
    for (const [hash, blob] of [...this.written.blobs]) {
      if (used.has(hash)) continue;
      this.written.blobs.delete(hash);
      report.freedBytes += blob.byteLength;
    }
    return report;
  }

  versionPath(version: string): string {
    return `${this.location}/versions/${version}`;
  }

  async removeVersion(version: string): Promise<void> {
    this.write('removeVersion');
    this.written.versions.delete(version);
  }

  async listVersions(): Promise<string[]> {
    return [...this.written.versions.keys()];
  }

  async readPointer(): Promise<ActivePointer | null> {
    return this.written.pointer === null ? null : structuredClone(this.written.pointer);
  }

  async writePointer(pointer: ActivePointer): Promise<void> {
    try {
      this.write('writePointer');
    } catch (error) {
      throw storageError(error, 'switch the active pointer');
    }
    // Temp file, fsync, rename, fsync folder: durable and atomic.
    this.written.pointer = structuredClone(pointer);
    this.synced.pointer = structuredClone(pointer);
  }
}

function cancelled(): UpdateError {
  return new UpdateError('CANCELLED', 'The download was cancelled; the partial file is kept and the next attempt resumes it.');
}

function summary(image: DiskImage) {
  return {
    pointer: image.pointer,
    blobs: [...image.blobs.keys()].sort(),
    versions: [...image.versions].map(([v, f]) => [v, [...f]]),
    staging: [...image.staging].map(([v, f]) => [v, [...f].map(([p, b]) => [p, b.byteLength])]),
  };
}
