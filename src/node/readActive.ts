/**
 * readActive: the active model for another process or worker beside the updater, without the folder's
 * writer lock. It reads the active pointer (written atomically, so always whole), pins the version it
 * names (readerPins.ts) so retention and gc leave it on disk, and checks the pointer again: a switch in
 * between is retried. Everything is read with the store's link guards.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { UpdateError } from '../core/errors.js';
import type { ModelRef } from '../core/modelRef.js';
import { storageError } from '../core/storageError.js';
import { FsModelStore } from './fsModelStore.js';
import { removePin, rewritePin, writePin, type ReaderPin } from './readerPins.js';

export interface ReadActiveOptions {
  /** The updater's model folder. */
  dir: string;
  /**
   * How long the pin counts without `renew()`. Default 24 hours. On the same host a reader whose process
   * is gone stops counting at once; on another host (a shared folder) only the lease ends its pin.
   */
  leaseMs?: number;
  /** Clock for the lease. Default Date.now. */
  now?: () => number;
}

/** The active version as a reader holds it. */
export interface ActiveModel extends ModelRef {
  /** Drops the pin: retention and gc may remove the version once it is no longer active or retained. Idempotent. */
  release(): Promise<void>;
  /** Extends the pin's lease by `leaseMs` from now (for a reader that holds the version longer). */
  renew(): Promise<void>;
}

const DEFAULT_LEASE_MS = 24 * 60 * 60_000;
/** Switches seen between reading the pointer and pinning before giving up (each one needs a whole update). */
const MAX_ATTEMPTS = 5;

/**
 * The active model of `dir`, pinned until `release()`. Rejects with NOT_INSTALLED when nothing is
 * installed, STORAGE_FAILED when a symbolic link is planted in the folder.
 * @example
 * const model = await readActive({ dir: '/var/lib/app/models' })
 * const session = await loadModel(`${model.path}/model.onnx`)
 * await model.release()
 */
export async function readActive(options: ReadActiveOptions): Promise<ActiveModel> {
  if (typeof options?.dir !== 'string' || options.dir.length === 0) throw new UpdateError('INVALID_ARGUMENT', 'readActive needs dir: the model folder the updater keeps.');
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  if (!(Number.isFinite(leaseMs) && leaseMs > 0)) throw new UpdateError('INVALID_ARGUMENT', `leaseMs must be a positive number of milliseconds, got ${leaseMs}.`);
  const now = options.now ?? Date.now;
  const store = new FsModelStore(options.dir);
  const dir = resolve(options.dir);
  const pinFor = (version: string): ReaderPin => ({ version, pid: process.pid, host: hostname(), leaseUntil: new Date(now() + leaseMs).toISOString() });

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const pointer = await store.readPointer();
    if (!pointer) {
      throw new UpdateError('NOT_INSTALLED', `No model is installed in ${dir} yet (no active pointer): let the updater install one (or give it a bundled model) first, then read again.`);
    }
    const { active } = pointer;
    const path = active.bundledPath ?? store.versionPath(active.version);
    // What the reader loads must not come from outside the folder (the bundled model is the app's own).
    if (active.bundledPath === undefined) await store.checkVersion(active.version);
    const pinPath = await writePin(dir, pinFor(active.version)).catch((error: unknown) => Promise.reject(storageError(error, `pin version ${active.version} in ${dir}`)));
    // Pinned only now: if a switch came in between, the version may already be on its way out.
    if ((await store.readPointer())?.active.version !== active.version) {
      await removePin(dir, pinPath).catch(() => undefined);
      continue;
    }
    let released = false;
    return {
      version: active.version,
      path,
      files: active.files,
      ...(active.bundledPath !== undefined ? { bundled: true as const } : {}),
      async release() {
        if (released) return;
        released = true;
        await removePin(dir, pinPath).catch((error: unknown) => Promise.reject(storageError(error, `release the pin of version ${active.version} in ${dir}`)));
      },
      async renew() {
        if (released) throw new UpdateError('INVALID_ARGUMENT', `The pin of version ${active.version} was released; call readActive again.`);
        await rewritePin(dir, pinPath, pinFor(active.version)).catch((error: unknown) => Promise.reject(storageError(error, `renew the pin of version ${active.version} in ${dir}`)));
      },
    };
  }
  throw new UpdateError('STORAGE_FAILED', `The active version in ${dir} changed ${MAX_ATTEMPTS} times while it was being read; try again.`);
}
