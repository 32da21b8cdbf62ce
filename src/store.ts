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

export interface FetchRequest {
  version: string;
  file: ManifestFile;
  /** Absolute URL of the file. */
  url: string;
  signal: AbortSignal;
  onBytes: (delta: number) => void;
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
  /** Bytes of a version already staged (a partial download counts), so a resume needs less space. */
  stagedBytes(version: string): Promise<number>;
  /** Downloads one file into staging, resuming a partial one; returns its size and SHA-256. */
  fetchToStaging(request: FetchRequest): Promise<FetchResult>;
  /** Deletes the staging area of one version, or all of it. */
  discardStaging(version?: string): Promise<void>;
  /** Moves a fully staged version into the versioned store. Idempotent. */
  promote(version: string): Promise<void>;
  /** Where a host loads a version from. */
  versionPath(version: string): string;
  removeVersion(version: string): Promise<void>;
  listVersions(): Promise<string[]>;
  readPointer(): Promise<ActivePointer | null>;
  /** Replaces the pointer atomically and durably: after it resolves, a crash keeps the new one. */
  writePointer(pointer: ActivePointer): Promise<void>;
}
