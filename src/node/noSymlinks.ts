/**
 * Refuses to write through a symbolic link planted inside the model folder: every existing component
 * of a path below the folder must be a real directory (and the file itself, if present, a regular file).
 */
import { constants } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { UpdateError } from '../errors.js';

/**
 * O_NOFOLLOW where the platform has it (0 elsewhere): opening a path whose last component is a symbolic
 * link fails with ELOOP instead of following it, which closes the gap between a check and the write.
 */
export const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;
/** Flags of 'w' (create or truncate, write only) that refuse a symbolic link. */
export const WRITE_NO_FOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | NO_FOLLOW;

/**
 * @example
 * await assertNoSymlinks('/var/lib/app/models', '/var/lib/app/models/staging/1.2.0/model.bin')
 */
export async function assertNoSymlinks(root: string, target: string): Promise<void> {
  const rel = relative(root, resolve(target));
  if (rel === '' || rel.startsWith('..') || resolve(root, rel) !== resolve(target)) {
    throw new UpdateError('STORAGE_FAILED', `Refusing to write ${target}: it is outside the model folder ${root}.`);
  }
  let path = root;
  const parts = rel.split(sep);
  for (const [i, part] of parts.entries()) {
    path = `${path}${sep}${part}`;
    const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (info === null) return;
    const last = i === parts.length - 1;
    if (info.isSymbolicLink() || (!last && !info.isDirectory()) || (last && !info.isFile() && !info.isDirectory())) {
      throw new UpdateError(
        'STORAGE_FAILED',
        `Refusing to write ${target}: ${path} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a plain file or folder'}, which could redirect the write outside ${root}. Remove it; model-updater never creates links there.`,
      );
    }
  }
}
