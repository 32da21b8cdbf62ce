/**
 * This install's stable random id, kept in the model folder: staged rollouts hash it into a bucket.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { storageError } from '../core/storageError.js';
import { writeFileAtomic } from './durableWrite.js';
import { readFileNoFollow } from './noSymlinks.js';

export const INSTALL_ID_FILE = 'install-id';

/**
 * Reads the id, creating it on first use.
 * @example
 * const id = await installId('/var/lib/app/models') // the same on every start
 */
export async function installId(dir: string): Promise<string> {
  const path = join(dir, INSTALL_ID_FILE);
  // A link in place of the id is refused (STORAGE_FAILED), never read through.
  const existing = ((await readFileNoFollow(dir, path, 'read the install id of').catch((error: unknown) => {
    if (error instanceof UpdateError) throw error;
    return '';
  })) ?? '').trim();
  if (/^[0-9a-f-]{36}$/.test(existing)) return existing;
  const id = randomUUID();
  await writeFileAtomic(path, `${id}\n`).catch((error: unknown) => Promise.reject(storageError(error, `write ${path}`)));
  return id;
}
