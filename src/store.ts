/**
 * What the actors need from storage. The Node adapter keeps files in folders; a browser adapter keeps
 * them in IndexedDB. The active pointer is the one commit point of an update.
 */
import type { FileDigest, InstalledVersion, ManifestFile } from '../machines/types.js';

export interface ActivePointer {
  schemaVersion: 1;
  active: InstalledVersion;
  /** Older complete versions kept for rollback, newest first. */
  retained: InstalledVersion[];
  switchedAt: string;
}

export interface GarbageReport {
  removedVersions: string[];
  removedStaging: string[];
  freedBytes: number;
}

export interface FetchRequest {
  version: string;
  file: ManifestFile;
  /** Absolute URL of the file. */
  url: string;
  signal: AbortSignal;
  onBytes: (delta: number) => void;
  /** Called when the transfer starts, with the bytes kept from an earlier attempt. */
  onStart?: (resumedFrom: number) => void;
}

export interface FetchResult extends FileDigest {
  bytesFetched: number;
  resumedFrom: number;
}

export interface ModelStore {
  /** Where the store lives, for messages. */
  readonly location: string;
  /** Creates what the store needs (folders, object stores). Idempotent. */
  init(): Promise<void>;
  freeBytes(): Promise<number>;
  /** Bytes still to download for these files: those already stored (shared with another version) or partly staged need less. */
  missingBytes(version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'size' | 'sha256'>>): Promise<number>;
  /**
   * Stages one file: from the store when a version already holds the same content, else downloaded
   * (resuming a partial file); returns its size and SHA-256.
   */
  fetchToStaging(request: FetchRequest): Promise<FetchResult>;
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
 * The same store with every asynchronous call's result passed through `wrap` (typing its errors, fencing
 * a dead process's calls in the simulator, ...). Synchronous members are left as they are.
 * @example
 * const typed = wrapStoreCalls(store, (name, result) => result.catch((e) => Promise.reject(toTyped(e))))
 */
export function wrapStoreCalls(store: ModelStore, wrap: (name: string, result: Promise<unknown>) => Promise<unknown>): ModelStore {
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
