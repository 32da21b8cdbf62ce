/**
 * The Node storage adapter: versions, staging and the active pointer as files under one folder.
 *
 *   <dir>/active.json              the commit point (written by temp + fsync + rename + fsync folder)
 *   <dir>/blobs/<sha256>           file contents, stored once however many versions share them (read-only)
 *   <dir>/versions/<version>/...   complete, verified versions: hard links to blobs, under manifest paths
 *   <dir>/staging/<version>/...    downloads in progress (kept across restarts for resume; FileStagingArea)
 *   <dir>/resume/<version>/...     their resume records (FileStagingArea)
 *   <dir>/chunk-index/<sha256>.<sizes>  cached chunk indexes of blobs (differential downloads)
 *   <dir>/events.log               the event log (see FileEventLog)
 *   <dir>/readers/<id>.pin.json    versions pinned by readers beside the updater (readerPins.ts, readActive.ts)
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UpdateError } from '../core/errors.js';
import type { FileDigest } from '../../machines/types.js';
import type { ActivePointer, ContentCheck, GarbageReport, ModelStore } from '../core/ports/modelStore.js';
import { storageError } from '../core/storageError.js';
import { fsyncFolder, writeFileAtomic } from './durableWrite.js';
import { pinnedVersions } from './readerPins.js';
import { assertNoSymlinks, assertNoSymlinksBelow, mkdirNoFollow, NO_FOLLOW, readFileNoFollow, WRITE_NO_FOLLOW } from './noSymlinks.js';

export const POINTER_FILE = 'active.json';
export const LOG_FILE = 'events.log';
/** The store's folders; `resume/` holds the resume records of staged files (node/fileStagingArea.ts). */
const FOLDERS = ['versions', 'staging', 'blobs', 'resume'] as const;
/** Cached chunk indexes of blobs; made when first needed (a folder from before indexes has none). */
const CHUNK_INDEX_FOLDER = 'chunk-index';

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  // Recursive readdir does not descend into links; lstat does not follow one.
  const entries = await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** SHA-256 of a file through one reused buffer, never through a symbolic link. */
async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, constants.O_RDONLY | NO_FOLLOW);
  try {
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Present as itself (a link counts as present, and is not followed). */
async function present(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Every folder of a tree, deepest first: the order in which their entries become durable. */
async function foldersBottomUp(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  const nested = entries.filter((entry) => entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name));
  return [...nested.sort((a, b) => b.length - a.length), folder];
}

export class FsModelStore implements ModelStore {
  readonly location: string;

  private readonly now: () => number;

  /** `now`: the clock reader pins' leases are judged by. Default Date.now. */
  constructor(location: string, options: { now?: () => number } = {}) {
    // Absolute, so the paths handed to hosts and printed by the CLI work from any working folder.
    this.location = resolve(location);
    this.now = options.now ?? Date.now;
  }

  /**
   * Creates the folder layout. A link planted at one of the store's folders is left for the operation
   * that would use it to refuse, so the active version still loads from an intact `versions/`.
   */
  async init(): Promise<void> {
    await mkdir(this.location, { recursive: true });
    for (const sub of FOLDERS) {
      const path = join(this.location, sub);
      if (!(await present(path))) await mkdirNoFollow(this.location, path).catch((error: unknown) => Promise.reject(storageError(error, `create ${path}`)));
    }
  }

  /** Refuses a link at `path` or at any folder between it and `dir`. */
  private async guard(path: string, action: string): Promise<void> {
    try {
      await assertNoSymlinks(this.location, path, action);
    } catch (error) {
      throw storageError(error, action);
    }
  }

  /**
   * Refuses a version folder holding anything but plain files and folders: what the host loads from it
   * must not come from outside the model folder.
   */
  async checkVersion(version: string): Promise<void> {
    try {
      await assertNoSymlinksBelow(this.location, this.versionPath(version), `load version ${version} from`);
    } catch (error) {
      throw storageError(error, `check version ${version}`);
    }
  }

  async freeBytes(): Promise<number> {
    const info = await statfs(this.location);
    return info.bavail * info.bsize;
  }

  private blobPath(sha256: string): string {
    return join(this.location, 'blobs', sha256);
  }

  async hasContent(sha256: string): Promise<boolean> {
    const path = this.blobPath(sha256);
    await this.guard(path, 'look for stored content in');
    return (await lstat(path).catch(() => null))?.isFile() ?? false;
  }

  /** Hashes the stored blob; one that is not a plain file of these bytes is removed (and fetched again). */
  async verifyContent(file: Pick<FileDigest, 'size' | 'sha256'>): Promise<ContentCheck> {
    const path = this.blobPath(file.sha256);
    // Never read through a linked blobs/ folder: the bytes hashed must be the ones in the model folder.
    await this.guard(join(this.location, 'blobs'), 'check stored content in');
    const info = await lstat(path).catch(() => null);
    if (info === null) return 'missing';
    if (info.isFile() && info.size === file.size && (await hashFile(path).catch(() => null)) === file.sha256) return 'verified';
    // Planted or bit-rotted: versions linking it keep their copy; the next promote stores the good bytes.
    await rm(path, { recursive: true, force: true }).catch((error: unknown) => Promise.reject(storageError(error, `remove the damaged ${path}`)));
    return 'discarded';
  }

  async readContent(sha256: string, position: number, length: number, into?: Uint8Array): Promise<Uint8Array | null> {
    const path = this.blobPath(sha256);
    await this.guard(path, 'read stored content in');
    const handle = await open(path, constants.O_RDONLY | NO_FOLLOW).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw storageError(error, `read ${path}`);
    });
    if (handle === null) return null;
    try {
      const bytes = into !== undefined && into.byteLength >= length ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(bytes, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return bytes.subarray(0, filled);
    } catch (error) {
      throw storageError(error, `read ${path}`);
    } finally {
      await handle.close();
    }
  }

  private chunkIndexPath(name: string): string {
    if (!/^[0-9a-f]{64}\.[0-9a-z-]+$/.test(name)) throw new UpdateError('INVALID_ARGUMENT', `"${name}" is not the name of a cached chunk index.`);
    return join(this.location, CHUNK_INDEX_FOLDER, name);
  }

  async readChunkIndex(name: string): Promise<Uint8Array | null> {
    const path = this.chunkIndexPath(name);
    await this.guard(path, 'read a cached chunk index in');
    return readFile(path).catch(() => null);
  }

  async writeChunkIndex(name: string, bytes: Uint8Array): Promise<void> {
    const path = this.chunkIndexPath(name);
    try {
      await this.guard(path, 'cache a chunk index in');
      await mkdirNoFollow(this.location, join(this.location, CHUNK_INDEX_FOLDER));
      await writeFileAtomic(path, bytes);
    } catch (error) {
      throw storageError(error, `cache the chunk index ${path}`);
    }
  }

  async discardStaging(version?: string): Promise<void> {
    const target = version === undefined ? join(this.location, 'staging') : this.stagingPath(version);
    // rm does not follow links below `target`; the check keeps `target` itself and its folders honest.
    // Their resume records go with them (a record without its bytes would only confuse a later resume).
    const records = version === undefined ? join(this.location, 'resume') : join(this.location, 'resume', version);
    await this.guard(target, 'discard downloads in');
    await this.guard(records, 'discard downloads in');
    await rm(target, { recursive: true, force: true });
    await rm(records, { recursive: true, force: true });
    if (version === undefined) await mkdirNoFollow(this.location, target);
  }

  async promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void> {
    const staged = this.stagingPath(version);
    const final = this.versionPath(version);
    const action = `install version ${version} into`;
    // The version folder is assembled aside and renamed into place: it appears whole or not at all.
    const assembling = `${final}.assembling`;
    try {
      for (const path of [staged, final, assembling, join(this.location, 'blobs')]) await assertNoSymlinks(this.location, path, action);
      if (!(await present(staged)) && (await present(final))) return; // an earlier run already promoted it
      await assertNoSymlinksBelow(this.location, staged, action);
      await rm(assembling, { recursive: true, force: true });
      for (const file of files) {
        const blob = this.blobPath(file.sha256);
        // A link at blobs/<sha> would become the version's file (link() links the link itself).
        await assertNoSymlinks(this.location, blob, action);
        if (!(await present(blob))) {
          await rename(join(staged, file.path), blob);
          await chmod(blob, 0o444); // a host writing into a model file would change every version sharing it
        }
        const target = join(assembling, file.path);
        await mkdirNoFollow(this.location, dirname(target), action);
        await link(blob, target);
      }
      await fsyncFolder(join(this.location, 'blobs'));
      // Every folder of the new version, not only its parent: after the switch, a crash must not lose
      // the entries (hard links) of a subfolder whose own directory block never reached the disk.
      for (const folder of await foldersBottomUp(assembling)) await fsyncFolder(folder);
      await rm(final, { recursive: true, force: true }); // leftovers of an earlier failed install
      await rename(assembling, final);
      await fsyncFolder(join(this.location, 'versions'));
      await rm(staged, { recursive: true, force: true });
      await fsyncFolder(join(this.location, 'staging'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new UpdateError('STORAGE_FAILED', `Version ${version} is not fully staged in ${this.location} (${(error as Error).message}); run the update again.`, { cause: error });
      }
      throw storageError(error, `move version ${version} into place`);
    }
  }

  async collectGarbage(keep: readonly string[], keepStaging: readonly string[] = []): Promise<GarbageReport> {
    const report: GarbageReport = { removedVersions: [], removedStaging: [], freedBytes: 0 };
    const action = 'delete old versions and downloads in';
    // Each path is checked just before it is read or removed: a link anywhere refuses the whole pass.
    for (const folder of FOLDERS) await this.guard(join(this.location, folder), action);
    // A version a live reader beside the updater holds stays until it lets go (or dies): readActive.ts.
    const pinned = await pinnedVersions(this.location, this.now()).catch((error: unknown) => Promise.reject(storageError(error, action)));
    for (const name of await this.listVersions()) {
      if (keep.includes(name) || pinned.has(name)) continue;
      const path = join(this.location, 'versions', name);
      await this.guard(path, action);
      await rm(path, { recursive: true, force: true });
      if (!name.endsWith('.assembling')) report.removedVersions.push(name);
    }
    await this.guard(join(this.location, 'staging'), action);
    for (const name of await readdir(join(this.location, 'staging')).catch(() => [])) {
      if (keepStaging.includes(name)) continue;
      const path = join(this.location, 'staging', name);
      await this.guard(path, action);
      report.freedBytes += await folderBytes(path);
      await rm(path, { recursive: true, force: true });
      report.removedStaging.push(name);
    }
    // Resume records of downloads that are gone (or were never more than a record).
    for (const name of await readdir(join(this.location, 'resume')).catch(() => [])) {
      if (keepStaging.includes(name)) continue;
      const path = join(this.location, 'resume', name);
      await this.guard(path, action);
      await rm(path, { recursive: true, force: true });
    }
    // A cached chunk index whose blob is gone describes nothing any more.
    await this.guard(join(this.location, CHUNK_INDEX_FOLDER), action);
    for (const name of await readdir(join(this.location, CHUNK_INDEX_FOLDER)).catch(() => [])) {
      const blob = this.blobPath(name.split('.')[0]!);
      const info = await lstat(blob).catch(() => null);
      if (info === null || info.nlink <= 1) await rm(join(this.location, CHUNK_INDEX_FOLDER, name), { force: true });
    }
    // A blob whose only link is its own name belongs to no version any more.
    await this.guard(join(this.location, 'blobs'), action);
    for (const name of await readdir(join(this.location, 'blobs')).catch(() => [])) {
      const path = this.blobPath(name);
      await this.guard(path, action);
      const info = await lstat(path).catch(() => null);
      if (info && info.nlink <= 1) {
        await unlink(path);
        report.freedBytes += info.size;
      }
    }
    return report;
  }

  versionPath(version: string): string {
    return join(this.location, 'versions', version);
  }

  private stagingPath(version: string): string {
    return join(this.location, 'staging', version);
  }

  async removeVersion(version: string): Promise<void> {
    await this.guard(this.versionPath(version), `remove version ${version} from`);
    await rm(this.versionPath(version), { recursive: true, force: true });
  }

  async listVersions(): Promise<string[]> {
    const folder = join(this.location, 'versions');
    await this.guard(folder, 'list the versions in');
    return readdir(folder).catch(() => []);
  }

  async readPointer(): Promise<ActivePointer | null> {
    const text = await readFileNoFollow(this.location, join(this.location, POINTER_FILE), 'read the active pointer of').catch((error: unknown) => {
      throw storageError(error, 'read the active pointer');
    });
    return text === null ? null : (JSON.parse(text) as ActivePointer);
  }

  async writePointer(pointer: ActivePointer): Promise<void> {
    try {
      await writeFileAtomic(join(this.location, POINTER_FILE), `${JSON.stringify(pointer, null, 2)}\n`);
    } catch (error) {
      throw storageError(error, 'switch the active pointer');
    }
  }
}
