/**
 * Nothing inside the model folder is trusted by its name or place: a symbolic link planted there (at
 * `blobs/`, `staging/`, `versions/`, a version, a file, the pointer, the lock, ...) would carry a write,
 * a delete or a read outside the folder. The folder itself (`dir`) is the host's choice and may be a
 * link; every link BELOW it is refused with STORAGE_FAILED naming it. model-updater never creates one.
 *
 * Each operation checks its paths with lstat just before it runs, and files are opened with O_NOFOLLOW.
 * (A process racing the check between lstat and the call can still win; closing that gap needs
 * openat-style calls Node does not have. The check stops links planted while the updater was not running.)
 */
import { constants, type Dirent } from 'node:fs';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { UpdateError } from '../core/errors.js';

/**
 * O_NOFOLLOW where the platform has it (0 elsewhere): opening a path whose last component is a symbolic
 * link fails with ELOOP instead of following it, which closes the gap between a check and the write.
 */
export const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;
/** Flags of 'w' (create or truncate, write only) that refuse a symbolic link. */
export const WRITE_NO_FOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | NO_FOLLOW;
/** Flags of 'r' that refuse a symbolic link. */
export const READ_NO_FOLLOW = constants.O_RDONLY | NO_FOLLOW;

/**
 * The error for a planted link (or a device, socket, ... where a file or folder belongs).
 * @example
 * throw plantedLink('/var/lib/app/models', '/var/lib/app/models/blobs', 'delete old versions in')
 */
export function plantedLink(root: string, path: string, action: string, isLink = true): UpdateError {
  return new UpdateError(
    'STORAGE_FAILED',
    `Refusing to ${action} ${root}: ${path} is ${isLink ? 'a symbolic link' : 'not a plain file or folder'}, which could carry the operation outside the model folder. Remove it; model-updater never creates links there.`,
  );
}

function below(root: string, target: string): string[] {
  const rel = relative(root, resolve(target));
  if (rel === '' || rel.startsWith('..') || resolve(root, rel) !== resolve(target)) {
    throw new UpdateError('STORAGE_FAILED', `Refusing to touch ${target}: it is outside the model folder ${root}.`);
  }
  return rel.split(sep);
}

async function lstatOrNull(path: string) {
  return lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
    throw error;
  });
}

/**
 * Every existing component of `target` below `root` must be a real folder (and `target` itself, if
 * present, a regular file or folder). Missing components end the check: nothing there to follow.
 * @example
 * await assertNoSymlinks('/var/lib/app/models', '/var/lib/app/models/staging/1.2.0/model.bin')
 */
export async function assertNoSymlinks(root: string, target: string, action = 'write into'): Promise<void> {
  const parts = below(root, target);
  let path = root;
  for (const [i, part] of parts.entries()) {
    path = `${path}${sep}${part}`;
    const info = await lstatOrNull(path);
    if (info === null) return;
    const last = i === parts.length - 1;
    if (info.isSymbolicLink() || (!last && !info.isDirectory()) || (last && !info.isFile() && !info.isDirectory())) {
      throw plantedLink(root, path, action, info.isSymbolicLink());
    }
  }
}

/**
 * Like assertNoSymlinks, and every entry of the folder `target`, at any depth, is a regular file or a
 * real folder: what a host reads from a version folder stays inside the model folder.
 * @example
 * await assertNoSymlinksBelow('/var/lib/app/models', '/var/lib/app/models/versions/1.2.0', 'load a version from')
 */
export async function assertNoSymlinksBelow(root: string, target: string, action: string): Promise<void> {
  await assertNoSymlinks(root, target, action);
  const walk = async (folder: string): Promise<void> => {
    const entries: Dirent[] = await readdir(folder, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
      throw error;
    });
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (!entry.isFile()) throw plantedLink(root, path, action, entry.isSymbolicLink());
    }
  };
  const info = await lstatOrNull(target);
  if (info?.isDirectory()) await walk(target);
}

/**
 * `mkdir -p` that creates each missing folder below `root` itself and refuses a link where a folder
 * belongs (mkdir's own recursion would pass through one).
 * @example
 * await mkdirNoFollow('/var/lib/app/models', '/var/lib/app/models/staging/1.2.0/vocab')
 */
export async function mkdirNoFollow(root: string, target: string, action = 'create a folder in'): Promise<void> {
  await mkdir(root, { recursive: true });
  if (resolve(target) === resolve(root)) return; // the model folder itself: nothing below it to make
  let path = root;
  for (const part of below(root, target)) {
    path = `${path}${sep}${part}`;
    let info = await lstatOrNull(path);
    if (info === null) {
      await mkdir(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      info = await lstat(path);
    }
    if (!info.isDirectory()) throw plantedLink(root, path, action, info.isSymbolicLink());
  }
}

/**
 * Reads a small file inside the model folder without following a link at its name; null when absent.
 * @example
 * const text = await readFileNoFollow('/var/lib/app/models', '/var/lib/app/models/active.json', 'read the active pointer of')
 */
export async function readFileNoFollow(root: string, path: string, action: string): Promise<string | null> {
  await assertNoSymlinks(root, path, action);
  let handle;
  try {
    handle = await open(path, READ_NO_FOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw plantedLink(root, path, action);
    throw error;
  }
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
