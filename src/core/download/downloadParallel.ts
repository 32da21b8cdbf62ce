/**
 * A whole model file over several connections at once: the file cut into parts fetched by ranges
 * (fetchSpans.ts) into a staged file written at any offsets. The same contract as downloadFile (one
 * attempt, the whole-file SHA-256 in the result, durable before it resolves, UpdateError on failure),
 * and three more things:
 * - the first answer decides: a server that ignores Range sends the whole file in that one request;
 * - the whole-file SHA-256 is computed in order as the bytes arrive: the connection at the hashed
 *   frontier hashes what it receives, the rest is read back as soon as the frontier reaches it;
 * - resume by span: the spans written are made durable and recorded as checkpoints.ts says (every
 *   16 MiB or every second), so after a crash only the missing ones are fetched, and only when the
 *   server still has the same validator.
 */
import { UpdateError } from '../errors.js';
import type { RandomAccessFile, ResumeRecord, Sha256, StagedFile, StagingArea } from '../ports/stagingArea.js';
import type { DownloadFileOptions, DownloadFileResult } from './downloadFile.js';
import { fetchSpans, isRestartRequired } from './fetchSpans.js';
import type { RateBudget } from './rateBudget.js';
import { storage, strong, throwIfAborted } from './sendRequest.js';
import { SpanSet } from './spanSet.js';
import { REAL_TIMERS, resolveConnections } from './transferGuard.js';
import { Checkpoints } from './checkpoints.js';

const MIB = 1024 * 1024;
/** Smaller files go in one request: the extra connections' set-up and the read-back cost more than they gain. */
export const PARALLEL_MIN_BYTES = 16 * MIB;

export interface DownloadParallelOptions extends DownloadFileOptions {
  /** Connections at once (default 4). */
  connections?: number;
  /** The update's bandwidth cap. */
  budget?: RateBudget;
}

/**
 * Whether a file goes over several connections: the platform writes at any offset, more than one
 * connection is allowed, and the file is large enough to gain.
 * @example
 * const download = goesParallel(staging, file.size, limits) ? downloadParallel : downloadFile
 */
export function goesParallel(staging: StagingArea, size: number, connections: number): boolean {
  return staging.openRandomAccess !== undefined && connections > 1 && size >= PARALLEL_MIN_BYTES;
}

/**
 * Downloads `url` into the staged `file` over up to `connections` ranges at once, keeping the spans an
 * earlier attempt recorded; resolves with the whole file's SHA-256 once the file is durable.
 *
 * @example
 * const { sha256 } = await downloadParallel({ url, file: { version: '1.2.0', path: 'model.bin' }, expectedSize,
 *   transport: createNodeTransport(), staging: new FileStagingArea(dir), connections: 4 })
 */
export async function downloadParallel(options: DownloadParallelOptions): Promise<DownloadFileResult> {
  const { file, expectedSize, staging, signal } = options;
  if (!staging.openRandomAccess) throw new UpdateError('INVALID_ARGUMENT', 'downloadParallel needs a staging area that writes at any offset (openRandomAccess).');
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UpdateError('INVALID_ARGUMENT', `expectedSize must be a whole number of bytes, got ${expectedSize}.`);
  }
  const connections = resolveConnections({ connections: options.connections });
  throwIfAborted(signal);
  const where = `${file.version}/${file.path}`;

  let { completed, validator } = await keptSpans(staging, file, expectedSize, where);
  const resumedFrom = completed.size;
  let raf = await storage(() => staging.openRandomAccess!(file, expectedSize), `open ${where}`);
  const record = (): ResumeRecord => ({ expectedSize, ...(validator === undefined ? {} : { validator }), completed: completed.list() });
  let hasher = new InOrderHasher(raf, await staging.createHash(), completed);
  let bytesFetched = 0;
  const checkpoints = new Checkpoints(() => (raf.flush ? raf.flush() : staging.sync(file)), (spans) => staging.writeRecord(file, spans), record, options.timers ?? REAL_TIMERS);
  try {
    // From here the file is one written by ranges: its size says nothing, the record's spans do.
    await storage(() => staging.writeRecord(file, record()), `write the resume record of ${where}`);
    options.onStart?.(resumedFrom);
    for (let restarted = false; completed.size < expectedSize; ) {
      try {
        const result = await fetchSpans({
          url: options.url,
          file: raf,
          spans: completed.missing(expectedSize).map(([start, end]) => ({ start, end })),
          expectedSize,
          ...(validator === undefined ? {} : { validator }),
          transport: options.transport,
          createHash: () => staging.createHash(),
          connections,
          acceptWholeBody: true,
          ...(signal ? { signal } : {}),
          ...(options.onBytes ? { onBytes: options.onBytes } : {}),
          ...(options.limits ? { limits: options.limits } : {}),
          ...(options.timers ? { timers: options.timers } : {}),
          ...(options.headers ? { headers: options.headers } : {}),
          ...(options.budget ? { budget: options.budget } : {}),
          onValidator: (learned) => {
            validator = strong(learned);
          },
          onData: (position, bytes) => hasher.arrived(position, bytes),
          onWritten: (start, end) => {
            completed.add(start, end);
            hasher.written(start, end);
            checkpoints.written(end - start);
          },
          onWholeBody: async () => {
            // The server sent the whole file (no Range, or it changed): nothing kept counts.
            completed.clear();
            hasher = new InOrderHasher(raf, await staging.createHash(), completed);
            options.onStart?.(0);
          },
        });
        bytesFetched += result.bytesFetched;
      } catch (error) {
        if (!isRestartRequired(error) || restarted) throw error;
        // The file changed under us: what was kept is worthless; start over, once.
        restarted = true;
        await checkpoints.idle();
        await raf.close({ sync: false }).catch(() => undefined);
        await storage(() => staging.remove(file), `remove ${where}`);
        completed = new SpanSet();
        validator = undefined;
        raf = await storage(() => staging.openRandomAccess!(file, expectedSize), `open ${where}`);
        hasher = new InOrderHasher(raf, await staging.createHash(), completed);
        await storage(() => staging.writeRecord(file, record()), `write the resume record of ${where}`);
        options.onStart?.(0);
      }
    }
    await checkpoints.idle();
    const sha256 = await hasher.finish(expectedSize, signal);
    await storage(() => raf.close({ sync: true }), `flush ${where} to disk`);
    await storage(() => staging.removeRecord(file), `remove the resume record of ${where}`);
    return { size: expectedSize, sha256, resumedFrom, bytesFetched };
  } catch (error) {
    // What arrived is kept for the next attempt: durable first, then recorded (after any checkpoint, whose record is older).
    await checkpoints.idle();
    const closed = await raf.close({ sync: true }).then(
      () => true,
      () => false,
    );
    if (error instanceof UpdateError && error.code === 'SIZE_MISMATCH') await staging.remove(file).catch(() => undefined);
    else if (closed) await staging.writeRecord(file, record()).catch(() => undefined);
    throw error;
  }
}

/** The spans an earlier attempt left that this one may keep: same size, same (strong) validator. */
async function keptSpans(staging: StagingArea, file: StagedFile, expectedSize: number, where: string): Promise<{ completed: SpanSet; validator: string | undefined }> {
  const record = await storage(() => staging.readRecord(file), `read the resume record of ${where}`);
  const size = await storage(() => staging.size(file), `read ${where}`);
  const validator = strong(record?.validator);
  if (size === 0 || size > expectedSize || record === undefined || record.expectedSize !== expectedSize || validator === undefined) {
    if (size > 0) await storage(() => staging.remove(file), `remove ${where}`);
    return { completed: new SpanSet(), validator: undefined };
  }
  // A file written in order (downloadFile) is one span from 0; one written by ranges lists its spans.
  const spans = record.completed ?? [[0, size]];
  const completed = new SpanSet(spans.filter(([, end]) => end <= Math.min(size, expectedSize)));
  return { completed, validator };
}

/**
 * The whole file's SHA-256, in order, as the bytes come: bytes arriving at the hashed frontier are
 * hashed on the way to the disk; bytes written ahead of it are read back once the frontier reaches them.
 */
class InOrderHasher {
  #hashed = 0;
  #reading: Promise<void> | undefined;
  #buffer: Uint8Array | undefined;
  #error: unknown;
  readonly #written: SpanSet;

  constructor(
    private readonly file: RandomAccessFile,
    private readonly hash: Sha256,
    written: SpanSet,
  ) {
    this.#written = new SpanSet(written.list());
    this.#pump();
  }

  arrived(position: number, bytes: Uint8Array): void {
    if (this.#reading === undefined && position === this.#hashed) {
      this.hash.update(bytes);
      this.#hashed += bytes.byteLength;
    }
  }

  written(start: number, end: number): void {
    this.#written.add(start, end);
    this.#pump();
  }

  /** Hashes what is left (all written by now) and returns the digest. */
  async finish(size: number, signal: AbortSignal | undefined): Promise<string> {
    for (;;) {
      await this.#reading;
      if (this.#error !== undefined) throw this.#error;
      if (this.#hashed >= size) break;
      throwIfAborted(signal);
      this.#pump();
      // Unreachable while every span is written; a bug must not pass as a hash.
      if (this.#reading === undefined) throw new UpdateError('STORAGE_FAILED', `The staged file has no bytes at ${this.#hashed} though every span was written; delete the staging folder and update again.`);
    }
    return this.hash.digest();
  }

  #pump(): void {
    if (this.#reading !== undefined || this.#error !== undefined) return;
    const end = this.#written.endOf(this.#hashed);
    if (end <= this.#hashed) return;
    const at = this.#hashed;
    // One buffer for every read-back: the hash is updated before the next read starts.
    this.#buffer ??= new Uint8Array(MIB);
    this.#reading = this.file
      .read(at, Math.min(MIB, end - at), this.#buffer)
      .then((bytes) => {
        this.hash.update(bytes);
        this.#hashed = at + bytes.byteLength;
        this.#reading = undefined;
        if (bytes.byteLength > 0) this.#pump();
      })
      .catch((error: unknown) => {
        this.#error = error;
        this.#reading = undefined;
      });
  }
}
