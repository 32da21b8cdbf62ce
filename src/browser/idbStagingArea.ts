/**
 * The browser StagingArea: a download in progress as IndexedDB chunks (see idbLayout.ts), each with
 * the hash-wasm SHA-256 state after it (WebCrypto has no incremental SHA-256), so a resume after a
 * dropped connection, a cancel or a page reload goes on from the last persisted byte without reading
 * the prefix again. The resume record has its own key, beside the chunks, never a payload name.
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import { del, get, set, type UseStore } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import { guardedIdb, idbStorageError } from './idbStorageError.js';
import { quotaError } from './quotaError.js';
import type { OpenOptions, ResumeRecord, Sha256, StagedFile, StagedWriter, StagingArea } from '../core/ports/stagingArea.js';
import { deleteRange, getAllInRange, getAllKeysInRange, prefixRange, type StagedChunk } from './idbLayout.js';

/** The staged chunks of one file, in order (the resume record, stored beside them, left out). */
export async function readStagedChunks(files: UseStore, version: string, path: string): Promise<StagedChunk[]> {
  const values = await getAllInRange<StagedChunk | ResumeRecord>(files, prefixRange(['s', version, path]));
  return values.filter((value): value is StagedChunk => 'blob' in value);
}

/** Where the resume record of a file is: after its numbered chunks, under the same prefix (so discarding the version takes it along). */
function recordKey(file: StagedFile): IDBValidKey {
  return ['s', file.version, file.path, 'record'];
}

function wrap(hasher: IHasher): Sha256 {
  return { update: (bytes) => void hasher.update(bytes), digest: () => hasher.digest('hex'), save: () => hasher.save() };
}

async function freshHasher(): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.init();
  return hasher;
}

export interface IdbStagingAreaOptions {
  /** Bytes gathered in memory before one chunk is written. Default 1 MiB. */
  chunkBytes?: number;
  /** Awaited before the first write of each file (the browser entry flushes the event log first). */
  beforeWrite?: () => Promise<void>;
}

/**
 * @example
 * const staging = new IdbStagingArea(openDatabases('asr').files)
 */
export class IdbStagingArea implements StagingArea {
  private readonly chunkBytes: number;
  beforeWrite: () => Promise<void>;
  /** The manifest's size of each file being written (from its resume record), for quota messages. */
  private readonly expectedSizes = new Map<string, number>();

  constructor(
    private readonly files: UseStore,
    options: IdbStagingAreaOptions = {},
  ) {
    this.chunkBytes = options.chunkBytes ?? 1024 * 1024;
    this.beforeWrite = options.beforeWrite ?? (async () => undefined);
  }

  async size(file: StagedFile): Promise<number> {
    return guardedIdb('read staged downloads', async () => (await readStagedChunks(this.files, file.version, file.path)).at(-1)?.end ?? 0);
  }

  async readRecord(file: StagedFile): Promise<ResumeRecord | undefined> {
    const record = await guardedIdb('read staged downloads', () => get<ResumeRecord>(recordKey(file), this.files));
    return record && typeof record.expectedSize === 'number' ? record : undefined;
  }

  async writeRecord(file: StagedFile, record: ResumeRecord): Promise<void> {
    await this.beforeWrite();
    this.expectedSizes.set(JSON.stringify([file.version, file.path]), record.expectedSize);
    await guardedIdb('store the download', () => set(recordKey(file), record, this.files));
  }

  async hashPrefix(file: StagedFile, length: number): Promise<{ hash: Sha256; length: number }> {
    const chunks = await guardedIdb('read staged downloads', () => readStagedChunks(this.files, file.version, file.path));
    const hasher = await freshHasher();
    // The state saved with the last chunk within `length`: nothing to read again.
    const last = chunks.filter((chunk) => chunk.end <= length).at(-1);
    if (last) hasher.load(last.state);
    return { hash: wrap(hasher), length: last?.end ?? 0 };
  }

  async createHash(): Promise<Sha256> {
    return wrap(await freshHasher());
  }

  async open(file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    await this.beforeWrite();
    const chunks = await guardedIdb('read staged downloads', () => readStagedChunks(this.files, file.version, file.path));
    // Chunks past the position are a stale tail.
    let index = chunks.filter((chunk) => chunk.end <= options.position).length;
    const keys = await guardedIdb('read staged downloads', () => getAllKeysInRange(this.files, prefixRange(['s', file.version, file.path])));
    for (const key of keys) {
      const at = (key as unknown[])[3];
      if (typeof at === 'number' && at >= index) await guardedIdb('discard staged downloads', () => del(key, this.files));
    }
    let offset = options.position;
    let stored = options.position;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let writes = Promise.resolve();
    let inFlight = 0;
    let paused = false;
    let failure: unknown;
    const persist = (): void => {
      if (pendingBytes === 0) return;
      // Cut now: the hash covers exactly these bytes (the caller hashes before it writes).
      const chunk: StagedChunk = { blob: new Blob(pending as BlobPart[]), end: offset + pendingBytes, state: options.hash.save!() };
      const key = ['s', file.version, file.path, index++];
      offset += pendingBytes;
      pending = [];
      pendingBytes = 0;
      inFlight++;
      writes = writes.then(async () => {
        if (failure === undefined) {
          try {
            await set(key, chunk, this.files);
            stored = chunk.end;
          } catch (error) {
            failure =
              (error as DOMException)?.name === 'QuotaExceededError'
                ? quotaError(file, stored, this.expectedSizes.get(JSON.stringify([file.version, file.path])), error)
                : idbStorageError('store the download', error);
            options.onError(failure);
          }
        }
        inFlight--;
        if (paused && inFlight === 0 && failure === undefined) {
          paused = false;
          options.onDrain();
        }
      });
    };
    return {
      write: (bytes) => {
        if (failure !== undefined) return false;
        pending.push(bytes.slice());
        pendingBytes += bytes.byteLength;
        if (pendingBytes < this.chunkBytes) return true;
        persist();
        // One chunk in flight at a time: the network waits for IndexedDB.
        if (inFlight > 1) paused = true;
        return !paused;
      },
      finish: async () => {
        if (failure === undefined) persist();
        await writes;
        if (failure !== undefined) throw failure;
      },
    };
  }

  async sync(): Promise<void> {
    // A committed IndexedDB transaction is durable.
  }

  async remove(file: StagedFile): Promise<void> {
    await this.beforeWrite();
    await guardedIdb('discard staged downloads', () => deleteRange(this.files, prefixRange(['s', file.version, file.path])));
  }

  async removeRecord(file: StagedFile): Promise<void> {
    await guardedIdb('store the download', () => del(recordKey(file), this.files));
  }
}
