/**
 * A ModelStore in memory that behaves like the file store (content-addressed blobs, staging kept for
 * resume, the pointer as the one commit point) and keeps two images of its disk: what was written and
 * what was synced. A crash keeps only the synced image, as a power cut does; faults make writes fail
 * with ENOSPC or EIO, and a small capacity fills the disk.
 *
 * Its staging area (`staging`, memoryStagingArea.ts) shares the two images: downloads go through the
 * real algorithm (download/downloadFile.ts) over the simulator's transport (memoryTransport.ts).
 *
 * Durability follows FsModelStore: the pointer is written atomically and synced; a finished download is
 * synced, a partial one is not; promote syncs the blobs and versions; deletions (discardStaging,
 * removeVersion, collectGarbage) are not synced, so a crash may bring deleted files back. Errors are typed
 * where FsModelStore types them and raw errno-style errors where FsModelStore lets fs errors through.
 */
import { createHash } from 'node:crypto';
import type { FileDigest, InstalledVersion } from '../../machines/types.js';
import { UpdateError } from '../core/errors.js';
import type { ResumeRecord } from '../core/ports/stagingArea.js';
import type { ActivePointer, ContentCheck, GarbageReport, ModelStore } from '../core/ports/modelStore.js';
import { storageError } from '../core/storageError.js';
import { MemoryStagingArea } from './memoryStagingArea.js';

/** One image of the simulated disk. */
export interface DiskImage {
  pointer: ActivePointer | null;
  blobs: Map<string, Uint8Array>;
  /** version → (path → sha256) */
  versions: Map<string, Map<string, string>>;
  /** version → (path → bytes so far) */
  staging: Map<string, Map<string, Uint8Array>>;
  /** version → (path → resume record), outside the payload's names as on disk */
  records: Map<string, Map<string, ResumeRecord>>;
}

/** A write that fails: the `after`-th write from now (0: the next), once or from then on. */
export interface WriteFault {
  code: 'ENOSPC' | 'EIO';
  after: number;
  mode: 'once' | 'from-then-on';
  /** Count only the writes of this method (e.g. 'promote', 'writePointer'). */
  only?: 'writeStaged' | 'discardStaging' | 'promote' | 'removeVersion' | 'collectGarbage' | 'writePointer';
}

export interface MemoryModelStoreOptions {
  /** Disk size in bytes (blobs and staging count). Default 256 MiB. */
  capacity?: number;
}

const WRITES = 'writeStaged discardStaging promote removeVersion collectGarbage writePointer';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function emptyImage(): DiskImage {
  return { pointer: null, blobs: new Map(), versions: new Map(), staging: new Map(), records: new Map() };
}

function cloneImage(image: DiskImage): DiskImage {
  return {
    pointer: image.pointer === null ? null : structuredClone(image.pointer),
    blobs: new Map(image.blobs),
    versions: new Map([...image.versions].map(([v, files]) => [v, new Map(files)])),
    staging: new Map([...image.staging].map(([v, files]) => [v, new Map(files)])),
    records: new Map([...image.records].map(([v, files]) => [v, new Map(files)])),
  };
}

export function errno(code: 'ENOSPC' | 'EIO', what: string): Error {
  const text = code === 'ENOSPC' ? 'no space left on device' : 'i/o error';
  return Object.assign(new Error(`${code}: ${text} (simulated), ${what}`), { code });
}

/**
 * @example
 * const store = new MemoryModelStore()
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

  /** The staging area on this disk, for the download (Platform.staging). */
  readonly staging: MemoryStagingArea;

  constructor(options: MemoryModelStoreOptions = {}) {
    this.capacity = options.capacity ?? 256 * 1024 * 1024;
    this.staging = new MemoryStagingArea({
      written: () => this.written,
      synced: () => this.synced,
      write: (name) => this.write(name),
      free: () => this.capacity - this.usedBytes(),
    });
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
    // (also the staging area's: its writes count and fail like the store's)
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

  async hasContent(sha256: string): Promise<boolean> {
    return this.written.blobs.has(sha256);
  }

  /** Hashes the stored bytes; a copy that does not match is removed, as the file store does. */
  async verifyContent(file: Pick<FileDigest, 'size' | 'sha256'>): Promise<ContentCheck> {
    const blob = this.written.blobs.get(file.sha256);
    if (!blob) return 'missing';
    if (blob.byteLength === file.size && sha256(blob) === file.sha256) return 'verified';
    this.written.blobs.delete(file.sha256);
    return 'discarded';
  }

  /** Replaces stored content with other bytes under the same name: a planted or bit-rotted blob, for tests. */
  damageContent(sha256: string, bytes: Uint8Array): void {
    this.written.blobs.set(sha256, bytes);
    this.synced.blobs.set(sha256, bytes);
  }

  async discardStaging(version?: string): Promise<void> {
    this.write('discardStaging');
    if (version === undefined) {
      this.written.staging.clear();
      this.written.records.clear();
    } else {
      this.written.staging.delete(version);
      this.written.records.delete(version);
    }
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
    this.written.records.delete(version);
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
      this.written.records.delete(version);
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

function summary(image: DiskImage) {
  return {
    pointer: image.pointer,
    blobs: [...image.blobs.keys()].sort(),
    versions: [...image.versions].map(([v, f]) => [v, [...f]]),
    staging: [...image.staging].map(([v, f]) => [v, [...f].map(([p, b]) => [p, b.byteLength])]),
  };
}
