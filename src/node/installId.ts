/**
 * This install's stable random id, kept in the model folder: staged rollouts hash it into a bucket.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fsModelStore.js';

export const INSTALL_ID_FILE = 'install-id';

/**
 * Reads the id, creating it on first use.
 * @example
 * const id = await installId('/var/lib/app/models') // the same on every start
 */
export async function installId(dir: string): Promise<string> {
  const path = join(dir, INSTALL_ID_FILE);
  const existing = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (/^[0-9a-f-]{36}$/.test(existing)) return existing;
  const id = randomUUID();
  await writeFileAtomic(path, `${id}\n`);
  return id;
}
