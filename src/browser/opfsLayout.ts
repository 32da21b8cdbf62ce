/**
 * Where the browser store keeps model bytes in the Origin Private File System (the rest stays in
 * IndexedDB, see idbLayout.ts):
 *
 *   model-updater/<name>/staging/<version>/<path>   a download in progress (names URI-encoded: a path's
 *                                                   folders become one file name)
 *   model-updater/<name>/content/<sha256>           an installed file, stored once however many versions share it
 *   model-updater/<name>/scratch                    the quota probe's file, removed after each probe
 *
 * A version's switch moves its staged file into content/ (a rename, no bytes copied).
 */
import type { StagedFile } from '../core/ports/stagingArea.js';
import type { OpfsPath } from './opfsProtocol.js';

const ROOT = 'model-updater';

export class OpfsLayout {
  constructor(readonly name: string) {}

  private get base(): string[] {
    return [ROOT, encodeURIComponent(this.name)];
  }

  staged(file: StagedFile): OpfsPath {
    return { dirs: [...this.base, 'staging', encodeURIComponent(file.version)], name: encodeURIComponent(file.path) };
  }

  stagingDirs(version?: string): string[] {
    return version === undefined ? [...this.base, 'staging'] : [...this.base, 'staging', encodeURIComponent(version)];
  }

  content(sha256: string): OpfsPath {
    return { dirs: [...this.base, 'content'], name: sha256 };
  }

  get scratch(): OpfsPath {
    return { dirs: this.base, name: 'scratch' };
  }

  get storeDirs(): string[] {
    return this.base;
  }
}

/** The folder at `dirs` from the OPFS root; undefined when it does not exist (and `create` is false). */
export async function opfsFolder(dirs: string[], create = false): Promise<FileSystemDirectoryHandle | undefined> {
  let dir = await navigator.storage.getDirectory();
  for (const name of dirs) {
    try {
      dir = await dir.getDirectoryHandle(name, { create });
    } catch (error) {
      if ((error as DOMException).name === 'NotFoundError') return undefined;
      throw error;
    }
  }
  return dir;
}

/** The file at `path`, or undefined. */
export async function opfsFile(path: OpfsPath): Promise<FileSystemFileHandle | undefined> {
  const dir = await opfsFolder(path.dirs);
  if (!dir) return undefined;
  try {
    return await dir.getFileHandle(path.name);
  } catch (error) {
    if ((error as DOMException).name === 'NotFoundError' || (error as DOMException).name === 'TypeMismatchError') return undefined;
    throw error;
  }
}

/** The size of the file at `path`; 0 when there is none. */
export async function opfsSize(path: OpfsPath): Promise<number> {
  const file = await opfsFile(path);
  return file ? (await file.getFile()).size : 0;
}

/** Removes the entry `name` of the folder at `dirs` (recursively), if it is there. */
export async function opfsRemove(dirs: string[], name: string): Promise<void> {
  const dir = await opfsFolder(dirs);
  if (!dir) return;
  try {
    await dir.removeEntry(name, { recursive: true });
  } catch (error) {
    if ((error as DOMException).name !== 'NotFoundError') throw error;
  }
}

/** The names in the folder at `dirs` (none when it does not exist). */
export async function opfsList(dirs: string[]): Promise<string[]> {
  const dir = await opfsFolder(dirs);
  if (!dir) return [];
  const names: string[] = [];
  for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
  return names;
}

/**
 * Renames the file at `from` to `to` (another folder of the same origin): a rename in the browser's
 * storage, no bytes copied (`FileSystemHandle.move`, Chromium 110+, Firefox 111+, Safari 16.4+).
 */
export async function opfsMove(from: OpfsPath, to: OpfsPath): Promise<boolean> {
  const file = (await opfsFile(from)) as (FileSystemFileHandle & { move?(dir: FileSystemDirectoryHandle, name: string): Promise<void> }) | undefined;
  if (!file) return false;
  const target = (await opfsFolder(to.dirs, true))!;
  if (typeof file.move !== 'function') throw new DOMException('This browser cannot move files in the Origin Private File System', 'NotSupportedError');
  await file.move(target, to.name);
  return true;
}
