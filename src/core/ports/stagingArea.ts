/**
 * The storage port of a model download: where the bytes of a file in progress wait until the version
 * is verified and promoted, and what a later attempt needs to resume them. Node keeps files
 * (node/fileStagingArea.ts), a browser IndexedDB chunks (browser/idbStagingArea.ts), the simulator a
 * memory disk (testing/memoryStagingArea.ts). The resume record lives outside the payload's namespace:
 * any file name a manifest may list is a payload name, never a sidecar.
 */

/** One file of a version being staged (its path as the manifest lists it). */
export interface StagedFile {
  version: string;
  path: string;
}

/** What the first attempt learned about the resource, so a later attempt resumes only the same bytes. */
export interface ResumeRecord {
  /** The manifest's size of the file: a prefix staged for another size is not resumed. */
  expectedSize: number;
  /** A strong ETag, or else Last-Modified: what a resumed request sends as the range's condition. Never a weak ETag. */
  validator?: string;
  /**
   * The file was written at any offsets (by ranges, download/fetchSpans.ts): the [start, end) spans
   * known durable, sorted and disjoint. Only these bytes are kept on resume, and only with the same
   * validator; the file's size says nothing about them.
   */
  completed?: Array<[number, number]>;
  /**
   * What the completed spans were written for, when that is more than the URL (a differential download:
   * the new file's and its chunk index's SHA-256): a record made for another plan is not trusted.
   */
  plan?: string;
}

/** An incremental SHA-256. */
export interface Sha256 {
  update(bytes: Uint8Array): void;
  /** Lowercase hex of everything given so far. */
  digest(): string;
  /** The internal state, when the hasher can save it (hash-wasm can, node:crypto cannot). */
  save?(): Uint8Array;
}

/** Writes one staged file from a position on, in order, with back-pressure. */
export interface StagedWriter {
  /**
   * Takes the next bytes (copied: the caller may reuse its buffer at once). False: stop writing until
   * the `onDrain` given to `open` is called. A write after false still works, so nothing in flight is lost.
   */
  write(bytes: Uint8Array): boolean;
  /**
   * Writes everything taken and closes; `sync`: makes the file durable first. Rejects with the first
   * write error. A writer that failed or was finished takes nothing more.
   */
  finish(options: { sync: boolean }): Promise<void>;
}

export interface OpenOptions {
  /** The offset of the first byte written: the file is cut there first (a stale tail must not survive). */
  position: number;
  /** The hash of the file so far, updated by the caller before each write (a platform that saves its state with the bytes reads it). */
  hash: Sha256;
  /** Called once a paused writer takes bytes again. */
  onDrain: () => void;
  /** Called once with the first write error; `finish` rejects with it too. */
  onError: (error: unknown) => void;
}

/**
 * A staged file written at any offsets: spans fetched over parallel connections and chunks copied from
 * versions already on the device land where they belong, in any order.
 */
export interface RandomAccessFile {
  /** Writes `bytes` at `position` (copied before it resolves: the caller may reuse its buffer). */
  write(position: number, bytes: Uint8Array): Promise<void>;
  /**
   * Reads `length` bytes at `position` (fewer at the end of the file). With `into` (at least `length`
   * long) a platform may read into it and return a view of it, so a reader going through a large file
   * reuses one buffer instead of leaving one behind per read; the result is what counts either way.
   */
  read(position: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * Makes everything written so far durable (data, and the size to read it back), keeping the file
   * open: a checkpoint. Optional: without it a checkpoint syncs through the staging area.
   */
  flush?(): Promise<void>;
  /** Makes everything written durable when `sync`, then closes. Idempotent. */
  close(options: { sync: boolean }): Promise<void>;
}

export interface StagingArea {
  /** Bytes staged for the file; 0 when there are none. */
  size(file: StagedFile): Promise<number>;
  readRecord(file: StagedFile): Promise<ResumeRecord | undefined>;
  writeRecord(file: StagedFile, record: ResumeRecord): Promise<void>;
  /**
   * A SHA-256 over the first `length` staged bytes, ready to take the rest: restored from a saved
   * state where the platform keeps one, else computed from the bytes. Resolves with the bytes it
   * covers, which may be fewer than asked when the saved states do not reach that far.
   */
  hashPrefix(file: StagedFile, length: number, signal: AbortSignal): Promise<{ hash: Sha256; length: number }>;
  /** A fresh SHA-256. */
  createHash(): Promise<Sha256>;
  open(file: StagedFile, options: OpenOptions): Promise<StagedWriter>;
  /**
   * Opens the staged file for writes at any offsets, sized to `size` (bytes already staged are kept, a
   * longer file is cut). Optional: a platform without it downloads each file whole, in order.
   */
  openRandomAccess?(file: StagedFile, size: number): Promise<RandomAccessFile>;
  /** Makes the staged bytes durable (a file already complete from an earlier attempt). */
  sync(file: StagedFile): Promise<void>;
  /** Deletes the staged bytes and the resume record. */
  remove(file: StagedFile): Promise<void>;
  /** Deletes only the resume record (the download finished). */
  removeRecord(file: StagedFile): Promise<void>;
}
