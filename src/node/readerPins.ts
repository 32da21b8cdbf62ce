/**
 * Reader pins: how a process reading the active model beside the updater (readActive) keeps its version
 * on disk. One small file per reader under `<dir>/readers/`, naming the version, the reader's pid and
 * host, and when its lease ends. Retention and gc keep every version a live pin names; a pin whose
 * process is gone (same host) or whose lease ran out is dead, ignored, and removed by the next gc.
 * Written and read with the same link guards as the rest of the store (noSymlinks.ts).
 */
import { randomUUID } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assertNoSymlinks, mkdirNoFollow, readFileNoFollow } from './noSymlinks.js';
import { writeFileAtomic } from './durableWrite.js';

export const READERS_FOLDER = 'readers';

/** What one pin file holds. */
export interface ReaderPin {
  version: string;
  pid: number;
  host: string;
  /** When the pin stops counting unless renewed (ISO 8601). */
  leaseUntil: string;
}

const PIN_SUFFIX = '.pin.json';

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A pin counts while its lease lasts and, on this host, while its process lives (a pid on another host
 * cannot be checked: the lease alone decides there).
 * @example
 * isLive({ version: '1.2.0', pid: 4242, host: hostname(), leaseUntil: '2030-01-01T00:00:00Z' }, Date.now())
 */
export function isLive(pin: ReaderPin, now: number): boolean {
  if (!(Date.parse(pin.leaseUntil) > now)) return false;
  return pin.host !== hostname() || processAlive(pin.pid);
}

/**
 * Writes a new pin for `version` and returns its file's path.
 * @example
 * const path = await writePin(dir, { version: '1.2.0', pid: process.pid, host: hostname(), leaseUntil })
 */
export async function writePin(dir: string, pin: ReaderPin): Promise<string> {
  const folder = join(dir, READERS_FOLDER);
  const action = 'pin a version for a reader in';
  await assertNoSymlinks(dir, folder, action);
  await mkdirNoFollow(dir, folder, action);
  const path = join(folder, `${pin.pid}-${randomUUID()}${PIN_SUFFIX}`);
  await assertNoSymlinks(dir, path, action);
  // Written aside and renamed into place: gc never sees a pin half written (and takes it for a dead one).
  await writeFileAtomic(path, `${JSON.stringify(pin)}\n`);
  return path;
}

/** Replaces a pin's content (a renewed lease) atomically. */
export async function rewritePin(dir: string, path: string, pin: ReaderPin): Promise<void> {
  await assertNoSymlinks(dir, path, 'renew a reader pin in');
  await writeFileAtomic(path, `${JSON.stringify(pin)}\n`);
}

/** Removes a pin; one already gone is fine. */
export async function removePin(dir: string, path: string): Promise<void> {
  await assertNoSymlinks(dir, path, 'release a reader pin in');
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/**
 * The versions live readers pin. Dead pins (and unreadable ones) are removed on the way, so a reader
 * that died pins nothing for long. A link at `readers/` or at a pin refuses the whole call (STORAGE_FAILED).
 * @example
 * const keep = [...keep, ...(await pinnedVersions(dir, Date.now()))]
 */
export async function pinnedVersions(dir: string, now: number): Promise<Set<string>> {
  const folder = join(dir, READERS_FOLDER);
  const action = 'read the reader pins in';
  await assertNoSymlinks(dir, folder, action);
  const names = await readdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const pinned = new Set<string>();
  for (const name of names.filter((n) => n.endsWith(PIN_SUFFIX))) {
    const path = join(folder, name);
    const text = await readFileNoFollow(dir, path, action);
    let pin: ReaderPin | null = null;
    try {
      pin = text === null ? null : (JSON.parse(text) as ReaderPin);
    } catch {
      // A pin cut short by a crash while being written: its reader is gone with it.
    }
    if (pin && typeof pin.version === 'string' && isLive(pin, now)) pinned.add(pin.version);
    else await unlink(path).catch(() => undefined);
  }
  return pinned;
}
