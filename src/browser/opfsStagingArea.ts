/**
 * The browser StagingArea on the Origin Private File System: the bytes of a download in progress go to
 * the OPFS worker (opfsWorker.ts) in batches of transferred buffers, which writes them through a sync
 * access handle and hashes them there. The page's thread only copies each network chunk into the batch
 * it is filling; a bounded number of batches is out at a time, and the writer pauses the network until
 * the worker hands one back (back-pressure). The resume record and the hash state after the bytes so
 * far stay in IndexedDB, so a resume after a reload hashes nothing again.
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import { del, get, set, type UseStore } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import type { OpenOptions, RandomAccessFile, ResumeRecord, Sha256, StagedFile, StagedWriter, StagingArea } from '../core/ports/stagingArea.js';
import { deleteRange, prefixRange } from './idbLayout.js';
import { guardedIdb } from './idbStorageError.js';
import type { OpfsClient } from './opfsClient.js';
import { OpfsLayout, opfsRemove, opfsSize } from './opfsLayout.js';
import { quotaError } from './quotaError.js';

const MiB = 1024 * 1024;
/** Buffers out at the worker at once: enough to keep it busy while the network fills the next. */
const BUFFERS_OUT = 4;
/** How often the hash state is saved for a resume (a reload re-fetches at most this much). */
const SAVE_STATE_EVERY = 8 * MiB;
/** A part-filled batch goes to the worker after this long: on a slow link a reload keeps what arrived. */
const FLUSH_IDLE_MS = 200;

/** The hash state saved beside the resume record: the SHA-256 of the first `end` staged bytes. */
interface SavedState {
  end: number;
  state: Uint8Array;
}

const recordKey = (file: StagedFile): IDBValidKey => ['s', file.version, file.path, 'record'];
const stateKey = (file: StagedFile): IDBValidKey => ['s', file.version, file.path, 'state'];

/**
 * A SHA-256 whose bytes are hashed in the OPFS worker once a writer takes it: `update` keeps a reference
 * to what the caller hashed, the writer has the worker hash exactly that (with the bytes when they are
 * the ones written, as downloadFile does), and `digest` answers what the worker computed when the
 * writer finished. Not given to a writer, it hashes on this thread like any other.
 */
export class WorkerHash implements Sha256 {
  private writing = false;
  private updates: Uint8Array[] = [];
  private result: string | undefined;
  private lastState: Uint8Array | undefined;

  constructor(private readonly local: IHasher) {}

  update(bytes: Uint8Array): void {
    if (this.result !== undefined) throw new Error('This hash is complete: its file was finished.');
    if (this.writing) this.updates.push(bytes);
    else this.local.update(bytes);
  }

  digest(): string {
    if (this.result !== undefined) return this.result;
    if (this.writing) throw new Error('The hash of a file being written is known once its writer finished.');
    return this.local.digest('hex');
  }

  save(): Uint8Array {
    return this.lastState ?? this.local.save();
  }

  /** The writer takes over: its bytes are hashed in the worker, from the state so far. */
  bind(): Uint8Array {
    this.writing = true;
    return this.local.save();
  }

  /** What the caller hashed since the last write, in order. */
  takeUpdates(): Uint8Array[] {
    const updates = this.updates;
    this.updates = [];
    return updates;
  }

  saved(state: Uint8Array): void {
    this.lastState = state;
  }

  finished(digest: string): void {
    this.result = digest;
    this.writing = false;
  }
}

async function freshHasher(state?: Uint8Array): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.init();
  if (state) hasher.load(state);
  return hasher;
}

function storageFailure(what: string, error: unknown): UpdateError {
  if (error instanceof UpdateError) return error;
  const quota = (error as DOMException)?.name === 'QuotaExceededError';
  return new UpdateError(
    quota ? 'INSUFFICIENT_DISK_SPACE' : 'STORAGE_FAILED',
    `Could not ${what} in the Origin Private File System: ${(error as Error)?.message ?? error}. ${quota ? "Free some of this site's storage" : 'Check that the site may store data (not a private window with storage disabled)'}, then try again.`,
    { cause: error },
  );
}

export interface OpfsStagingAreaOptions {
  /** Bytes per buffer sent to the worker. Default 1 MiB. */
  batchBytes?: number;
  /** Awaited before the first write of each file (the browser entry flushes the event log first). */
  beforeWrite?: () => Promise<void>;
}

/**
 * @example
 * const staging = new OpfsStagingArea(client, openDatabases('asr').files, new OpfsLayout('asr'))
 */
export class OpfsStagingArea implements StagingArea {
  beforeWrite: () => Promise<void>;
  private readonly batchBytes: number;
  private nextHandle = 1;
  /** The manifest's size of each file being written (from its resume record), for quota messages. */
  private readonly expectedSizes = new Map<string, number>();

  constructor(
    private readonly client: OpfsClient,
    private readonly files: UseStore,
    private readonly layout: OpfsLayout,
    options: OpfsStagingAreaOptions = {},
  ) {
    this.batchBytes = options.batchBytes ?? MiB;
    this.beforeWrite = options.beforeWrite ?? (async () => undefined);
  }

  async size(file: StagedFile): Promise<number> {
    try {
      return await opfsSize(this.layout.staged(file));
    } catch (error) {
      throw storageFailure(`read the staged ${file.path}`, error);
    }
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
    const saved = await guardedIdb('read staged downloads', () => get<SavedState>(stateKey(file), this.files));
    if (saved && saved.end <= length && saved.end > 0) return { hash: new WorkerHash(await freshHasher(saved.state)), length: saved.end };
    if (length === 0) return { hash: await this.createHash(), length: 0 };
    // No saved state within the prefix (saved after more bytes than are left): the worker reads it.
    try {
      const answer = await this.client.request({ op: 'hashFile', path: this.layout.staged(file), length });
      return { hash: new WorkerHash(await freshHasher(answer.state)), length: answer.end ?? 0 };
    } catch (error) {
      throw storageFailure(`read the staged ${file.path}`, error);
    }
  }

  async createHash(): Promise<Sha256> {
    return new WorkerHash(await freshHasher());
  }

  async open(file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    await this.beforeWrite();
    const hash = options.hash instanceof WorkerHash ? options.hash : undefined;
    const handle = this.nextHandle++;
    // A saved state past the position belongs to bytes about to be cut.
    const saved = await get<SavedState>(stateKey(file), this.files).catch(() => undefined);
    if (saved && saved.end > options.position) await del(stateKey(file), this.files).catch(() => undefined);
    try {
      await this.client.request({ op: 'open', handle, path: this.layout.staged(file), position: options.position, state: hash ? hash.bind() : null, hashing: hash !== undefined });
    } catch (error) {
      throw storageFailure(`open the staged ${file.path}`, error);
    }
    return new OpfsWriter(this.client, handle, file, options, hash, this.batchBytes, this.expectedSizes.get(JSON.stringify([file.version, file.path])), (state) =>
      set(stateKey(file), state, this.files),
    );
  }

  /**
   * Writes at any offsets through the worker's sync access handle (`{ at }`): ranges fetched in
   * parallel and chunks reused from other versions land where they belong.
   * @example
   * const out = await staging.openRandomAccess({ version: '1.2.0', path: 'model.bin' }, size)
   * await out.write(4096, bytes); await out.close({ sync: true })
   */
  async openRandomAccess(file: StagedFile, size: number): Promise<RandomAccessFile> {
    await this.beforeWrite();
    const handle = this.nextHandle++;
    // Bytes may now change anywhere: a saved in-order hash state no longer describes them.
    await del(stateKey(file), this.files).catch(() => undefined);
    const { client } = this;
    try {
      await client.request({ op: 'openRandom', handle, path: this.layout.staged(file), size });
    } catch (error) {
      throw storageFailure(`open the staged ${file.path}`, error);
    }
    let closed: Promise<void> | undefined;
    return {
      async write(position, bytes) {
        // Copied into a buffer of its own, which is transferred (the caller keeps its own).
        const buffer = bytes.slice().buffer;
        try {
          await client.request({ op: 'write', handle, buffer, length: bytes.byteLength, hashed: 0, at: position }, [buffer]);
        } catch (error) {
          throw (error as DOMException)?.name === 'QuotaExceededError' ? quotaError(file, position, size, error) : storageFailure(`write the staged ${file.path}`, error);
        }
      },
      async read(position, length) {
        try {
          const answer = await client.request({ op: 'read', handle, at: position, length });
          return new Uint8Array(answer.buffer!);
        } catch (error) {
          throw storageFailure(`read the staged ${file.path}`, error);
        }
      },
      close({ sync }) {
        closed ??= client.request({ op: 'close', handle, sync }).then(
          () => undefined,
          (error) => Promise.reject(storageFailure(`write the staged ${file.path}`, error)),
        );
        return closed;
      },
    };
  }

  async sync(file: StagedFile): Promise<void> {
    const size = await this.size(file);
    const handle = this.nextHandle++;
    try {
      await this.client.request({ op: 'openRandom', handle, path: this.layout.staged(file), size });
      await this.client.request({ op: 'close', handle, sync: true });
    } catch (error) {
      throw storageFailure(`flush the staged ${file.path}`, error);
    }
  }

  async remove(file: StagedFile): Promise<void> {
    await this.beforeWrite();
    const path = this.layout.staged(file);
    try {
      await opfsRemove(path.dirs, path.name);
    } catch (error) {
      throw storageFailure(`discard the staged ${file.path}`, error);
    }
    await guardedIdb('discard staged downloads', () => deleteRange(this.files, prefixRange(['s', file.version, file.path])));
  }

  async removeRecord(file: StagedFile): Promise<void> {
    await guardedIdb('store the download', () => del(recordKey(file), this.files));
  }
}

/** One file written in order through the worker (see the module comment). */
class OpfsWriter implements StagedWriter {
  private readonly spare: ArrayBuffer[] = [];
  private batch: ArrayBuffer | undefined;
  private filled = 0;
  private batchHashed = false;
  private out = 0;
  private paused = false;
  private failure: unknown;
  private written: number;
  private savedEnd: number;
  private latest: { end: number; state: Uint8Array } | undefined;
  private replies: Promise<void> = Promise.resolve();
  private saves: Promise<unknown> = Promise.resolve();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly client: OpfsClient,
    private readonly handle: number,
    private readonly file: StagedFile,
    private readonly options: OpenOptions,
    private readonly hash: WorkerHash | undefined,
    private readonly batchBytes: number,
    private readonly expectedSize: number | undefined,
    private readonly saveState: (state: SavedState) => Promise<void>,
  ) {
    this.written = options.position;
    this.savedEnd = options.position;
  }

  write(bytes: Uint8Array): boolean {
    if (this.failure !== undefined) return false;
    let hashed = false;
    if (this.hash) {
      const updates = this.hash.takeUpdates();
      if (updates.length === 1 && updates[0] === bytes) {
        hashed = true;
      } else if (updates.length > 0) {
        // Hashed apart from what is written: the worker hashes those bytes alone, after the batch so far.
        this.send();
        for (const update of updates) this.hashOnly(update);
      }
    }
    // A batch is hashed whole or not at all.
    if (hashed !== this.batchHashed) {
      this.send();
      this.batchHashed = hashed;
    }
    let at = 0;
    while (at < bytes.byteLength) {
      this.batch ??= this.spare.pop() ?? new ArrayBuffer(this.batchBytes);
      const n = Math.min(bytes.byteLength - at, this.batchBytes - this.filled);
      new Uint8Array(this.batch, this.filled, n).set(bytes.subarray(at, at + n));
      this.filled += n;
      at += n;
      if (this.filled === this.batchBytes) this.send();
    }
    if (this.filled > 0) this.flushTimer ??= setTimeout(() => this.send(), FLUSH_IDLE_MS);
    if (this.out >= BUFFERS_OUT) this.paused = true;
    return !this.paused;
  }

  async finish({ sync }: { sync: boolean }): Promise<void> {
    if (this.failure === undefined) {
      this.send();
      for (const update of this.hash?.takeUpdates() ?? []) this.hashOnly(update);
    }
    await this.replies;
    // The furthest the hash got is where a later attempt resumes.
    if (this.latest && this.latest.end > this.savedEnd) this.save(this.latest);
    let closing: unknown;
    let answer: { size: number; digest?: string } | undefined;
    try {
      answer = (await this.client.request({ op: 'close', handle: this.handle, sync: sync && this.failure === undefined })).value as { size: number; digest?: string };
    } catch (error) {
      closing = error;
    }
    await this.saves.catch(() => undefined);
    if (this.failure !== undefined) throw this.failure;
    if (closing !== undefined) throw storageFailure(`write the staged ${this.file.path}`, closing);
    if (this.hash && answer?.digest !== undefined) this.hash.finished(answer.digest);
  }

  /** Hands the batch being filled to the worker. */
  private send(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.failure !== undefined) return;
    const buffer = this.batch;
    const length = this.filled;
    if (!buffer || length === 0) return;
    this.batch = undefined;
    this.filled = 0;
    this.out++;
    const reply = this.client.request({ op: 'write', handle: this.handle, buffer, length, hashed: this.batchHashed ? length : 0 }, [buffer]);
    this.replies = this.replies.then(() =>
      reply.then(
        (answer) => this.returned(answer.buffer!, answer.end!, answer.state),
        (error) => this.refused(error),
      ),
    );
  }

  private hashOnly(bytes: Uint8Array): void {
    const buffer = bytes.slice().buffer;
    const reply = this.client.request({ op: 'hash', handle: this.handle, buffer, length: bytes.byteLength }, [buffer]);
    this.replies = this.replies.then(() =>
      reply.then(
        () => undefined,
        (error) => this.refused(error, false),
      ),
    );
  }

  private returned(buffer: ArrayBuffer, end: number, state: Uint8Array | undefined): void {
    this.out--;
    this.written = end;
    if (this.spare.length < BUFFERS_OUT) this.spare.push(buffer);
    if (state) {
      this.hash?.saved(state);
      this.latest = { end, state };
      if (end - this.savedEnd >= SAVE_STATE_EVERY) this.save(this.latest);
    }
    if (this.paused && this.failure === undefined && this.out < BUFFERS_OUT) {
      this.paused = false;
      this.options.onDrain();
    }
  }

  private refused(error: unknown, written = true): void {
    if (written) this.out--;
    if (this.failure !== undefined) return;
    this.failure = (error as DOMException)?.name === 'QuotaExceededError' ? quotaError(this.file, this.written, this.expectedSize, error) : storageFailure(`write the staged ${this.file.path}`, error);
    this.options.onError(this.failure);
  }

  private save(state: SavedState): void {
    this.savedEnd = state.end;
    this.saves = this.saves.then(() => this.saveState(state)).catch(() => undefined);
  }
}
