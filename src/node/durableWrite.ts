/**
 * Durable writes: a file replaced whole (never half old, half new) and a folder whose new entries survive
 * a power cut. Shared by the store, the lock, the trust state, reader pins and the publisher.
 */
import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WRITE_NO_FOLLOW } from './noSymlinks.js';

/** Makes a rename or a new file in `folder` durable. */
export async function fsyncFolder(folder: string): Promise<void> {
  // Callers check the folder for links first (`dir` itself may be one, by the host's choice).
  const handle = await open(folder, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a file so that a crash leaves either the old content or the new, never a mix. */
export async function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
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
