/**
 * Fetches a file's chunk index and checks it against the signed manifest: its size and SHA-256 first
 * (the bytes are the publisher's), then its content (decodeChunkIndex: a hostile index is refused).
 * The GET goes through the one download algorithm (redirects, guards, sizes, errors), into memory.
 */
import type { ChunkIndexRef } from '../../../machines/types.js';
import { decodeChunkIndex, type ChunkIndex } from '../chunks/chunkIndex.js';
import { downloadFile } from '../download/downloadFile.js';
import type { DownloadLimits, Timers } from '../download/transferGuard.js';
import { UpdateError } from '../errors.js';
import type { OpenOptions, ResumeRecord, StagedFile, StagedWriter, StagingArea, Sha256 } from '../ports/stagingArea.js';
import type { Transport } from '../ports/transport.js';

export interface FetchChunkIndexOptions {
  /** Absolute URL of the index (the manifest's `chunkIndex.url` resolved against the manifest's). */
  url: string;
  ref: ChunkIndexRef;
  /** Size of the file the index describes (from the manifest). */
  fileSize: number;
  /** For messages: the file's version and path. */
  file: StagedFile;
  transport: Transport;
  /** A fresh SHA-256 (the staging area's `createHash`). */
  createHash: () => Promise<Sha256>;
  signal?: AbortSignal;
  limits?: DownloadLimits;
  timers?: Timers;
  headers?: Record<string, string>;
}

/**
 * @example
 * const index = await fetchChunkIndex({ url, ref: file.chunkIndex, fileSize: file.size, file: { version, path }, transport, createHash })
 */
export async function fetchChunkIndex(options: FetchChunkIndexOptions): Promise<{ index: ChunkIndex; bytes: Uint8Array }> {
  const { ref, file } = options;
  const memory = new MemoryFile(options.createHash);
  const result = await downloadFile({
    url: options.url,
    file: { version: file.version, path: `${file.path} (chunk index)` },
    expectedSize: ref.size,
    transport: options.transport,
    staging: memory,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  if (result.sha256 !== ref.sha256) {
    throw new UpdateError(
      'INTEGRITY_MISMATCH',
      `The chunk index of ${file.version}/${file.path} at ${options.url} has SHA-256 ${result.sha256}, the signed manifest says ${ref.sha256}; the update service serves a damaged or tampered index. Nothing was installed; publish the version again.`,
    );
  }
  const bytes = memory.bytes();
  return { index: decodeChunkIndex(bytes, options.fileSize, `the chunk index of ${file.version}/${file.path} (${options.url})`), bytes };
}

/** A staging area of one small file in memory: what downloadFile writes the index into. */
class MemoryFile implements StagingArea {
  #pieces: Uint8Array[] = [];
  #length = 0;

  constructor(private readonly hasher: () => Promise<Sha256>) {}

  bytes(): Uint8Array {
    const all = new Uint8Array(this.#length);
    let at = 0;
    for (const piece of this.#pieces) {
      all.set(piece, at);
      at += piece.length;
    }
    return all;
  }

  async size(): Promise<number> {
    return this.#length;
  }
  async readRecord(): Promise<ResumeRecord | undefined> {
    return undefined;
  }
  async writeRecord(): Promise<void> {}
  async hashPrefix(_file: StagedFile, _length: number): Promise<{ hash: Sha256; length: number }> {
    // Never resumed: a prefix is always fetched again.
    this.#pieces = [];
    this.#length = 0;
    return { hash: await this.hasher(), length: 0 };
  }
  createHash(): Promise<Sha256> {
    return this.hasher();
  }
  async open(_file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    this.#pieces = [];
    this.#length = options.position === 0 ? 0 : this.#length;
    return {
      write: (bytes) => {
        // A copy: the transport reads into a buffer it reuses, and a Buffer's slice() is only a view.
        this.#pieces.push(new Uint8Array(bytes));
        this.#length += bytes.length;
        return true;
      },
      finish: async () => undefined,
    };
  }
  async sync(): Promise<void> {}
  async remove(): Promise<void> {
    this.#pieces = [];
    this.#length = 0;
  }
  async removeRecord(): Promise<void> {}
}
