/**
 * The Node storage adapter: versions, staging and the active pointer as files under one folder.
 *
 *   <dir>/active.json              the commit point (written by temp + fsync + rename + fsync folder)
 *   <dir>/blobs/<sha256>           file contents, stored once however many versions share them (read-only)
 *   <dir>/versions/<version>/...   complete, verified versions: hard links to blobs, under manifest paths
 *   <dir>/staging/<version>/...    downloads in progress (kept across restarts for resume)
 *   <dir>/events.log               the event log (see FileEventLog)
 */
import { chmod, link, mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UpdateError } from '../errors.js';
import type { FileDigest } from '../../machines/types.js';
import type { ActivePointer, FetchRequest, FetchResult, GarbageReport, ModelStore } from '../store.js';
import { downloadFile } from './httpDownload.js';
import { storageError } from '../storageError.js';
import { assertNoSymlinks, WRITE_NO_FOLLOW } from './noSymlinks.js';
import type { ProxySetting } from './proxy.js';
import { guardThroughput, type ThroughputLimits } from '../throughputGuard.js';

/** Per-file transfer limits (the slow-retrieval defense). */
export interface DownloadLimits extends ThroughputLimits {
  /** No byte for this long fails the transfer with DOWNLOAD_STALLED. Default 30 000 ms. */
  stallTimeoutMs?: number;
}

export const POINTER_FILE = 'active.json';
export const LOG_FILE = 'events.log';

/** Makes a rename or a new file in `folder` durable. */
export async function fsyncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a file so that a crash leaves either the old content or the new, never a mix. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  // Not through a symbolic link planted at the temp name: it would carry the write outside the folder.
  const handle = await open(temp, WRITE_NO_FOLLOW, 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await fsyncFolder(dirname(path));
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  const entries = await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export class FsModelStore implements ModelStore {
  readonly location: string;

  constructor(
    location: string,
    /** Transfer limits for each file: stall timeout and minimum throughput (slow-retrieval defense). */
    private readonly limits: DownloadLimits = {},
    /** The proxy option for the downloads (proxy.ts); undefined follows HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
    private readonly proxy: ProxySetting = undefined,
  ) {
    // Absolute, so the paths handed to hosts and printed by the CLI work from any working folder.
    this.location = resolve(location);
  }

  /** Creates the folder layout. */
  async init(): Promise<void> {
    for (const sub of ['versions', 'staging', 'blobs']) await mkdir(join(this.location, sub), { recursive: true });
  }

  async freeBytes(): Promise<number> {
    const info = await statfs(this.location);
    return info.bavail * info.bsize;
  }

  private blobPath(sha256: string): string {
    return join(this.location, 'blobs', sha256);
  }

  async missingBytes(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'size' | 'sha256'>>): Promise<number> {
    let missing = 0;
    for (const file of files) {
      if (await exists(this.blobPath(file.sha256))) continue;
      const partial = await stat(join(this.stagingPath(version), file.path)).then((info) => info.size, () => 0);
      missing += Math.max(0, file.size - partial);
    }
    return missing;
  }

  async fetchToStaging(request: FetchRequest): Promise<FetchResult> {
    const { file } = request;
    // Content another version already holds is not downloaded again; promote links it.
    if (await exists(this.blobPath(file.sha256))) {
      return { path: file.path, size: file.size, sha256: file.sha256, bytesFetched: 0, resumedFrom: 0 };
    }
    const partPath = join(this.stagingPath(request.version), file.path);
    // A symlink planted in the folder must not carry the write elsewhere: checked before and after mkdir.
    await assertNoSymlinks(this.location, partPath);
    await mkdir(dirname(partPath), { recursive: true });
    await assertNoSymlinks(this.location, partPath);
    const guard = guardThroughput(request.signal, this.limits, request.url);
    const result = await downloadFile({
      url: request.url,
      partPath,
      expectedSize: file.size,
      signal: guard.signal,
      onBytes: (delta) => {
        guard.onBytes(delta);
        request.onBytes(delta);
      },
      ...(request.onStart ? { onStart: request.onStart } : {}),
      ...(this.limits.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: this.limits.stallTimeoutMs }),
      ...(this.proxy === undefined ? {} : { proxy: this.proxy }),
    }).catch((error: unknown) => {
      throw guard.tripped ?? error;
    }).finally(() => guard.dispose());
    return { path: file.path, size: result.size, sha256: result.sha256, bytesFetched: result.bytesFetched, resumedFrom: result.resumedFrom };
  }

  async discardStaging(version?: string): Promise<void> {
    const target = version === undefined ? join(this.location, 'staging') : this.stagingPath(version);
    await rm(target, { recursive: true, force: true });
    if (version === undefined) await mkdir(target, { recursive: true });
  }

  async promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void> {
    const staged = this.stagingPath(version);
    const final = this.versionPath(version);
    if (!(await exists(staged)) && (await exists(final))) return; // an earlier run already promoted it
    // The version folder is assembled aside and renamed into place: it appears whole or not at all.
    const assembling = `${final}.assembling`;
    try {
      await rm(assembling, { recursive: true, force: true });
      for (const file of files) {
        const blob = this.blobPath(file.sha256);
        await assertNoSymlinks(this.location, join(staged, file.path));
        await assertNoSymlinks(this.location, join(assembling, file.path));
        if (!(await exists(blob))) {
          await rename(join(staged, file.path), blob);
          await chmod(blob, 0o444); // a host writing into a model file would change every version sharing it
        }
        const target = join(assembling, file.path);
        await mkdir(dirname(target), { recursive: true });
        await link(blob, target);
      }
      await fsyncFolder(join(this.location, 'blobs'));
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
    for (const name of await this.listVersions()) {
      if (keep.includes(name)) continue;
      await rm(join(this.location, 'versions', name), { recursive: true, force: true });
      if (!name.endsWith('.assembling')) report.removedVersions.push(name);
    }
    for (const name of await readdir(join(this.location, 'staging')).catch(() => [])) {
      if (keepStaging.includes(name)) continue;
      const path = join(this.location, 'staging', name);
      report.freedBytes += await folderBytes(path);
      await rm(path, { recursive: true, force: true });
      report.removedStaging.push(name);
    }
    // A blob whose only link is its own name belongs to no version any more.
    for (const name of await readdir(join(this.location, 'blobs')).catch(() => [])) {
      const path = this.blobPath(name);
      const info = await stat(path).catch(() => null);
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
    await rm(this.versionPath(version), { recursive: true, force: true });
  }

  async listVersions(): Promise<string[]> {
    return readdir(join(this.location, 'versions')).catch(() => []);
  }

  async readPointer(): Promise<ActivePointer | null> {
    const text = await readFile(join(this.location, POINTER_FILE), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
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
