/**
 * One updater per model folder: a lock file with a lease, taken over when its holder is dead (its pid
 * is gone on this host) or its lease ran out (a holder on another host, or a frozen one).
 *
 * Not proper-lockfile: it judges staleness by mtime alone, and we also want pid liveness, so a crashed
 * holder's lock is taken over at once instead of after the lease.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { closeSync, constants, lstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { writeFileAtomic } from './durableWrite.js';
import { NO_FOLLOW, READ_NO_FOLLOW, readFileNoFollow } from './noSymlinks.js';

export const LOCK_FILE = '.lock';

interface LockContent {
  pid: number;
  host: string;
  token: string;
  leaseUntil: number;
}

export interface DirLockOptions {
  /** How long a holder's claim lasts without renewal. Default 30 s; renewed every third of it. */
  leaseMs?: number;
  /** How long to wait for a live holder before failing with LOCKED. Default 0: fail at once. */
  waitMs?: number;
  now?: () => number;
}

/** Held in this process, by folder: a second updater on the same folder must not pass as the same pid. */
const heldHere = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An unreadable lock younger than this may be a holder of an older version still writing it: not stale yet. */
const TORN_GRACE_MS = 10_000;

async function readLock(path: string, now: number): Promise<LockContent | null> {
  // A link in place of the lock is refused, not read: its target is outside the folder's care.
  const text = await readFileNoFollow(dirname(path), path, 'take the lock of').catch((error: unknown) => {
    if (error instanceof UpdateError) throw error;
    return null;
  });
  if (text === null) return null;
  try {
    return JSON.parse(text) as LockContent;
  } catch {
    // Empty or cut short: a holder that died while writing it, or (a version that created the file
    // before writing it) one still writing. Stale once it is old; until then, held by someone unknown.
    const modified = await stat(path).then((info) => info.mtimeMs, () => 0);
    return { pid: -1, host: hostname(), token: 'torn', leaseUntil: now - modified < TORN_GRACE_MS ? modified + TORN_GRACE_MS : 0 };
  }
}

function isStale(lock: LockContent, now: number): boolean {
  if (lock.leaseUntil < now) return true;
  if (lock.token === 'torn') return false;
  return lock.host === hostname() && !pidAlive(lock.pid) && !(lock.pid === process.pid);
}

/**
 * Creates the lock with its content already in it: written and synced under a name of its own, then
 * hard-linked to the lock's name, which fails if a lock is there. A reader never sees an empty lock
 * (with O_EXCL and a write after, a racer read one as torn, took it over, and two updaters ran).
 */
async function tryCreate(path: string, content: LockContent): Promise<boolean> {
  const own = `${path}.${content.token}`;
  try {
    const handle = await open(own, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW, 0o644);
    try {
      await handle.writeFile(JSON.stringify(content));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(own, path);
    return true;
  } catch (error) {
    // EEXIST: a lock is there. ENOENT: our own file was swept as litter while we stood frozen; try again.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    throw new UpdateError('STORAGE_FAILED', `Could not create the lock ${path}: ${(error as Error).message}. Check the folder's permissions.`, { cause: error });
  } finally {
    await rm(own, { force: true }).catch(() => undefined);
  }
}

/** Moves a stale lock aside; if a racer replaced it meanwhile, puts the racer's lock back. */
async function takeOver(path: string, stale: LockContent, token: string): Promise<void> {
  const aside = `${path}.takeover-${token}`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else moved it first
  }
  const moved = await readLock(aside, Date.now());
  if (moved && moved.token !== stale.token) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

/**
 * Removes what a process killed in the middle of taking or taking over the lock leaves beside it: its
 * own file (`.lock.<token>`) or the lock it moved aside (`.lock.takeover-<token>`). Only regular files
 * older than TORN_GRACE_MS (a live process links or removes its own within milliseconds), never through
 * a link; run by the holder, so no other process is taking the lock over meanwhile.
 */
async function sweepLeftovers(dir: string, now: number): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(`${LOCK_FILE}.`)) continue;
    const path = join(dir, name);
    const info = await lstat(path).catch(() => null);
    if (info?.isFile() && now - info.mtimeMs > TORN_GRACE_MS) await rm(path, { force: true }).catch(() => undefined);
  }
}

/**
 * Takes the folder's lock; resolves with a release function.
 * @example
 * const release = await acquireDirLock('/var/lib/app/models'); try { ... } finally { release() }
 */
export async function acquireDirLock(dir: string, options: DirLockOptions = {}): Promise<() => void> {
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? 30_000;
  const path = join(dir, LOCK_FILE);
  const token = randomUUID();
  const deadline = now() + (options.waitMs ?? 0);
  const content = (): LockContent => ({ pid: process.pid, host: hostname(), token, leaseUntil: now() + leaseMs });

  for (;;) {
    if (!heldHere.has(path) && (await tryCreate(path, content()))) break;
    const holder = await readLock(path, now());
    if (holder && !heldHere.has(path) && isStale(holder, now())) {
      await takeOver(path, holder, token);
      continue;
    }
    if (now() >= deadline) {
      const who = holder ? `process ${holder.pid} on ${holder.host}` : 'another updater in this process';
      throw new UpdateError('LOCKED', `The model folder ${dir} is in use by ${who}. Wait for it to finish, or stop it; a dead holder's lock is taken over automatically.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  heldHere.add(path);
  await sweepLeftovers(dir, Date.now());

  const renew = setInterval(() => {
    void writeFileAtomic(path, JSON.stringify(content())).catch(() => undefined);
  }, leaseMs / 3);
  renew.unref();

  let released = false;
  // Synchronous, so a stop() followed at once by a new start() finds the folder free.
  return () => {
    if (released) return;
    released = true;
    clearInterval(renew);
    heldHere.delete(path);
    let holder: LockContent | null = null;
    try {
      if (lstatSync(path).isSymbolicLink()) return;
      const fd = openSync(path, READ_NO_FOLLOW);
      try {
        holder = JSON.parse(readFileSync(fd, 'utf8')) as LockContent;
      } finally {
        closeSync(fd);
      }
    } catch {
      return;
    }
    if (holder.token === token) rmSync(path, { force: true });
  };
}
