/**
 * What the actors need from storage. The Node adapter keeps files in folders; a browser adapter keeps
 * them in IndexedDB. The active pointer is the one commit point of an update.
 */
import type { FileDigest, InstalledVersion } from '../../../machines/types.js';
import type { LogHead } from '../log/logAnchor.js';

/** What a stored copy of a file's content turned out to be (ModelStore.verifyContent). */
export type ContentCheck = 'verified' | 'missing' | 'discarded';

export interface ActivePointer {
  schemaVersion: 1;
  active: InstalledVersion;
  /** Older complete versions kept for rollback, newest first. */
  retained: InstalledVersion[];
  switchedAt: string;
  /** The event log's last record when the pointer was written: the chain-end anchor (absent in folders written by 0.1.0). */
  logHead?: LogHead;
}

export interface GarbageReport {
  removedVersions: string[];
  removedStaging: string[];
  freedBytes: number;
}

export interface ModelStore {
  /** Where the store lives, for messages. */
  readonly location: string;
  /**
   * Whether the platform granted persistent storage when init() asked (a browser's
   * `navigator.storage.persist()`); logged with the start. Absent where nothing is asked.
   */
  readonly persisted?: boolean | undefined;
  /** Creates what the store needs (folders, object stores). Idempotent. */
  init(): Promise<void>;
  freeBytes(): Promise<number>;
  /** Whether stored content (another version's file) has this SHA-256 as its name: cheap, for estimates. */
  hasContent(sha256: string): Promise<boolean>;
  /**
   * Whether stored content with this name really holds these bytes, proven by hashing them: a version
   * that lists the same file reuses it instead of downloading. A copy whose bytes do not match (planted,
   * bit-rotted) is removed, so the file is fetched again and promote stores the good bytes.
   * 'verified': reuse it; 'missing': none stored; 'discarded': one was stored and did not match.
   */
  verifyContent(file: Pick<FileDigest, 'size' | 'sha256'>): Promise<ContentCheck>;
  /**
   * Reads `length` bytes at `position` of stored content (a held version's file, by its SHA-256): the
   * chunks a differential download copies instead of fetching. Null when no such content is stored.
   * Optional: a store without it downloads changed files whole. With `into` (at least `length` long) a
   * platform may read into it and return a view of it, so a copy through a large file reuses its
   * buffers instead of touching fresh memory for every read.
   */
  readContent?(sha256: string, position: number, length: number, into?: Uint8Array): Promise<Uint8Array | null>;
  /**
   * A cached chunk index (chunks/chunkIndex.ts) of stored content, by the name the differential
   * download gives it (the content's SHA-256 and the chunk sizes). Null when none is cached. Cached
   * indexes are hints: every chunk copied from stored content is verified against the new index.
   */
  readChunkIndex?(name: string): Promise<Uint8Array | null>;
  /** Caches a chunk index in the model folder; collectGarbage removes it with its content. */
  writeChunkIndex?(name: string, bytes: Uint8Array): Promise<void>;
  /** Deletes the staging area of one version, or all of it. */
  discardStaging(version?: string): Promise<void>;
  /** Moves a fully staged, verified version into the versioned store. Idempotent. */
  promote(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'sha256'>>): Promise<void>;
  /** Where a host loads a version from. */
  versionPath(version: string): string;
  /**
   * Refuses (STORAGE_FAILED) a version whose folder is not what the store made, e.g. holds a symbolic
   * link that would make the host load bytes from outside the store. Optional: stores without links omit it.
   */
  checkVersion?(version: string): Promise<void>;
  removeVersion(version: string): Promise<void>;
  listVersions(): Promise<string[]>;
  /**
   * Removes every version not in `keep`, staging other than `keepStaging`, and stored content no kept
   * version uses.
   */
  collectGarbage(keep: readonly string[], keepStaging?: readonly string[]): Promise<GarbageReport>;
  readPointer(): Promise<ActivePointer | null>;
  /** Replaces the pointer atomically and durably: after it resolves, a crash keeps the new one. */
  writePointer(pointer: ActivePointer): Promise<void>;
}

/**
 * The same store (or any port) with every asynchronous call's result passed through `wrap` (typing its
 * errors, fencing a dead process's calls in the simulator, ...). Synchronous members are left as they are.
 * @example
 * const typed = wrapStoreCalls(store, (name, result) => result.catch((e) => Promise.reject(toTyped(e))))
 */
export function wrapStoreCalls<T extends object = ModelStore>(store: T, wrap: (name: string, result: Promise<unknown>) => Promise<unknown>): T {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof Promise ? wrap(String(name), result) : result;
      };
    },
  });
}
