/**
 * The Node storage adapter: versions, staging and the active pointer as files under one folder.
 *
 *   <dir>/active.json              the commit point (written by temp + fsync + rename + fsync folder)
 *   <dir>/versions/<version>/...   complete, verified versions
 *   <dir>/staging/<version>/...    downloads in progress (kept across restarts for resume)
 *   <dir>/events.log               the event log (see FileEventLog)
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UpdateError } from '../errors.js';
import type { ActivePointer, FetchRequest, FetchResult, ModelStore } from '../store.js';
import { downloadFile } from './httpDownload.js';

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
  const handle = await open(temp, 'w', 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await fsyncFolder(dirname(path));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  const entries = await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function storageError(action: string, error: unknown): UpdateError {
  const code = (error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'INSUFFICIENT_DISK_SPACE' : 'STORAGE_FAILED';
  return new UpdateError(code, `Could not ${action}: ${(error as Error).message}. Check the model folder's permissions and free space.`, {
    cause: error,
  });
}

export class FsModelStore implements ModelStore {
  readonly location: string;

  constructor(location: string) {
    // Absolute, so the paths handed to hosts and printed by the CLI work from any working folder.
    this.location = resolve(location);
  }

  /** Creates the folder layout. */
  async init(): Promise<void> {
    for (const sub of ['versions', 'staging']) await mkdir(join(this.location, sub), { recursive: true });
  }

  async freeBytes(): Promise<number> {
    const info = await statfs(this.location);
    return info.bavail * info.bsize;
  }

  stagedBytes(version: string): Promise<number> {
    return folderBytes(this.stagingPath(version));
  }

  async fetchToStaging(request: FetchRequest): Promise<FetchResult> {
    const partPath = join(this.stagingPath(request.version), request.file.path);
    await mkdir(dirname(partPath), { recursive: true });
    const result = await downloadFile({
      url: request.url,
      partPath,
      expectedSize: request.file.size,
      signal: request.signal,
      onBytes: request.onBytes,
    });
    return { path: request.file.path, size: result.size, sha256: result.sha256, bytesFetched: result.bytesFetched, resumedFrom: result.resumedFrom };
  }

  async discardStaging(version?: string): Promise<void> {
    const target = version === undefined ? join(this.location, 'staging') : this.stagingPath(version);
    await rm(target, { recursive: true, force: true });
    if (version === undefined) await mkdir(target, { recursive: true });
  }

  async promote(version: string): Promise<void> {
    const staged = this.stagingPath(version);
    const final = this.versionPath(version);
    if (!(await exists(staged))) {
      if (await exists(final)) return; // an earlier run already promoted it
      throw new UpdateError('STORAGE_FAILED', `Version ${version} is neither staged nor installed in ${this.location}. Run the update again.`);
    }
    try {
      await rm(final, { recursive: true, force: true }); // leftovers of an earlier failed install
      await rename(staged, final);
      await fsyncFolder(join(this.location, 'versions'));
      await fsyncFolder(join(this.location, 'staging'));
    } catch (error) {
      throw storageError(`move version ${version} into place`, error);
    }
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
      throw storageError('read the active pointer', error);
    });
    return text === null ? null : (JSON.parse(text) as ActivePointer);
  }

  async writePointer(pointer: ActivePointer): Promise<void> {
    try {
      await writeFileAtomic(join(this.location, POINTER_FILE), `${JSON.stringify(pointer, null, 2)}\n`);
    } catch (error) {
      throw storageError('switch the active pointer', error);
    }
  }
}
