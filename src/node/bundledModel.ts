/**
 * The model an app ships in its own bundle (option `bundled`), seen from Node: where it may be, and the
 * description of its files, made once when the updater adopts it. Only ever read, never written.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { InstalledVersion } from '../../machines/types.js';
import { UpdateError } from '../core/errors.js';
import { READ_NO_FOLLOW } from './noSymlinks.js';

function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Refuses a bundled folder that overlaps the model folder: the store writes and deletes under `dir`, and
 * must never do so under the app's own files.
 * @example
 * assertBundledOutside('/var/lib/app/models', '/opt/app/resources/model') // ok
 */
export function assertBundledOutside(dir: string, bundledPath: string): void {
  const [store, bundled] = [resolve(dir), resolve(bundledPath)];
  if (inside(store, bundled) || inside(bundled, store)) {
    throw new UpdateError(
      'INVALID_ARGUMENT',
      `bundled.path ${bundled} overlaps the model folder ${store}: the bundled model must stay in the app's own folder, outside dir (and dir outside it), so the updater never writes or deletes its files.`,
    );
  }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, READ_NO_FOLLOW);
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/**
 * The bundled model's files, with the paths, sizes and SHA-256 hashes `updater.active.files` lists. Read
 * only (opened O_RDONLY, nothing else touched). A missing folder, an empty one, or a symbolic link in it is
 * INVALID_ARGUMENT: the shipped model would not be what the app loads.
 * @example
 * const files = await describeBundledFolder('/opt/app/resources/model') // [{ path: 'model.onnx', size, sha256 }]
 */
export async function describeBundledFolder(path: string): Promise<InstalledVersion['files']> {
  const root = resolve(path);
  const info = await lstat(root).catch(() => null);
  if (!info?.isDirectory()) {
    throw new UpdateError('INVALID_ARGUMENT', `bundled.path ${root} is not a folder: give the folder inside the app bundle that holds the shipped model's files.`);
  }
  const files: InstalledVersion['files'] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of (await readdir(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        const { size } = await lstat(full);
        files.push({ path: relative(root, full).split(sep).join('/'), size, sha256: await sha256Of(full) });
      } else {
        throw new UpdateError('INVALID_ARGUMENT', `The bundled model folder ${root} holds ${full}, which is not a plain file or folder (a symbolic link?); ship the model's files themselves.`);
      }
    }
  };
  await walk(root);
  if (files.length === 0) throw new UpdateError('INVALID_ARGUMENT', `The bundled model folder ${root} is empty: ship the model's files in it.`);
  return files;
}
