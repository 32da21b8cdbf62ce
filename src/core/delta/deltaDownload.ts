/**
 * A differential download of one file: its chunk index (checked against the signed manifest) is
 * compared with the chunks of the files the device holds; held chunks are copied into the staged file,
 * the rest is fetched as coalesced single `Range` spans (download/fetchSpans.ts, several connections,
 * each chunk verified as it arrives). One pass in file order copies, waits for fetched spans and hashes
 * the whole file, so the result carries the whole-file SHA-256 the version is verified with, exactly
 * as a whole-file download's: nothing changes in what is trusted.
 *
 * Resume by chunk: the ranges copied or fetched-and-verified are recorded in the resume record once
 * durable (the file synced first), with the validator and the plan's identity (the new file's and its
 * index's SHA-256). A later attempt of the same plan keeps them and fetches or copies only the rest;
 * kept chunks are not re-verified one by one (the whole-file hash covers them, and a mismatch checks
 * every copy). Another plan, no strong validator, or a validator the server no longer has: from nothing.
 *
 * Not applicable (resolves null, the caller downloads the file whole): no random-access staging, a
 * store that cannot read its content, no chunk held locally, an index the server does not have, a
 * server that ignores Range, or a file that changed on the server under us.
 */
import type { ManifestFile } from '../../../machines/types.js';
import { decodeChunkIndex, type ChunkIndex } from '../chunks/chunkIndex.js';
import { cancelled } from '../download/downloadErrors.js';
import { fetchSpans, isRestartRequired, type FetchChunk, type FetchSpan as RangeSpan } from '../download/fetchSpans.js';
import type { DownloadFileResult } from '../download/downloadFile.js';
import type { RateBudget } from '../download/rateBudget.js';
import { REAL_TIMERS, type DownloadLimits, type Timers } from '../download/transferGuard.js';
import { Checkpoints } from '../download/checkpoints.js';
import { SpanSet } from '../download/spanSet.js';
import { strong } from '../download/sendRequest.js';
import { UpdateError } from '../errors.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { RandomAccessFile, ResumeRecord, StagedFile, StagingArea } from '../ports/stagingArea.js';
import type { Transport } from '../ports/transport.js';
import { fetchChunkIndex } from './fetchChunkIndex.js';
import { chunkIndexName, heldChunkIndexes, type HeldContent } from './localChunks.js';
import { localChunkMap, planDelta, type ChunkCopy, type DeltaPlan } from './planDelta.js';

export interface DeltaDownloadOptions {
  /** Absolute URL of the file. */
  url: string;
  /** Absolute URL of its chunk index. */
  indexUrl: string;
  /** The manifest's entry (size, SHA-256, chunkIndex). */
  expected: Pick<ManifestFile, 'size' | 'sha256' | 'chunkIndex'>;
  file: StagedFile;
  /** Stored content the chunks may come from (the active and retained versions' files). */
  held: readonly HeldContent[];
  transport: Transport;
  staging: StagingArea;
  store: ModelStore;
  signal?: AbortSignal;
  limits?: DownloadLimits;
  timers?: Timers;
  headers?: Record<string, string>;
  /** Connections for the spans. Default fetchSpans'. */
  connections?: number;
  budget?: RateBudget;
  /** See PlanOptions.maxGapBytes. */
  maxGapBytes?: number;
  /** Bytes received over the network. */
  onBytes?: (delta: number) => void;
  /** Bytes copied from the device. */
  onCopied?: (delta: number) => void;
  /** The plan, once made (before any byte is written). */
  onPlan?: (plan: DeltaPlan) => void;
  /** Indexes already fetched and checked (by the check's estimate), by their SHA-256. */
  indexCache?: IndexCache;
}

/** Chunk indexes fetched and checked, by their SHA-256: the check's estimate hands them to the download. */
export class IndexCache {
  readonly #entries = new Map<string, Uint8Array>();
  constructor(private readonly capacity = 8) {}
  get(sha256: string): Uint8Array | undefined {
    return this.#entries.get(sha256);
  }
  set(sha256: string, bytes: Uint8Array): void {
    this.#entries.delete(sha256);
    this.#entries.set(sha256, bytes);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

/**
 * Files smaller than this come whole: an index request and a plan are not worth a few chunks there.
 * It also keeps small files' downloads exactly as before indexes (one GET).
 */
export const DELTA_MIN_FILE_BYTES = 8 * 1024 * 1024;

/** Whether this platform can assemble a file from the chunks it holds: random-access staging, readable content. */
export function supportsDifferential(store: ModelStore, staging: StagingArea): boolean {
  return staging.openRandomAccess !== undefined && store.readContent !== undefined;
}

/** Whether a differential download of this file could use a chunk index it does not have yet. */
export function wantsChunkIndex(file: ManifestFile): boolean {
  return file.chunkIndex === undefined && file.size >= DELTA_MIN_FILE_BYTES;
}

export interface DeltaDownloadResult extends DownloadFileResult {
  /** Bytes copied from held content. */
  copiedBytes: number;
}

const READ_BYTES = 4 * 1024 * 1024;

/**
 * The plan of a file's differential download: its index fetched and checked, the held chunks found.
 * Null when the file has no index or the index is not on the server (the file comes whole).
 * @example
 * const planned = await planFileDelta({ ...options }); console.log(planned?.plan.fetchBytes)
 */
export async function planFileDelta(
  options: Pick<DeltaDownloadOptions, 'indexUrl' | 'expected' | 'file' | 'held' | 'transport' | 'staging' | 'store' | 'signal' | 'limits' | 'timers' | 'headers' | 'maxGapBytes' | 'indexCache'>,
): Promise<{ index: ChunkIndex; indexBytes: Uint8Array; plan: DeltaPlan } | null> {
  const { expected, store, staging } = options;
  if (!expected.chunkIndex || !store.readContent || expected.size < DELTA_MIN_FILE_BYTES) return null;
  let fetched: { index: ChunkIndex; bytes: Uint8Array };
  const known = options.indexCache?.get(expected.chunkIndex.sha256);
  try {
    fetched = known
      ? { index: decodeChunkIndex(known, expected.size, `the chunk index of ${options.file.version}/${options.file.path}`), bytes: known }
      : await fetchChunkIndex({
      url: options.indexUrl,
      ref: expected.chunkIndex,
      fileSize: expected.size,
      file: options.file,
      transport: options.transport,
      createHash: () => staging.createHash(),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.timers ? { timers: options.timers } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    });
  } catch (error) {
    // An index the server does not serve (404, 403, a broken redirect) only costs the whole file; an
    // index that is damaged, hostile, of the wrong size or cut short by the network fails like the file would.
    if (error instanceof UpdateError && (error.code === 'DOWNLOAD_FAILED' || error.code === 'SERVICE_REJECTED')) return null;
    throw error;
  }
  options.indexCache?.set(expected.chunkIndex.sha256, fetched.bytes);
  const held = options.held.filter((content) => content.sha256 !== expected.sha256);
  const indexes = await heldChunkIndexes(store, held, fetched.index.params, () => staging.createHash(), options.signal);
  const plan = planDelta(fetched.index, localChunkMap(indexes), options.maxGapBytes === undefined ? {} : { maxGapBytes: options.maxGapBytes });
  return { index: fetched.index, indexBytes: fetched.bytes, plan };
}

/**
 * @example
 * const result = await deltaDownload({ url, indexUrl, expected: file, file: { version, path }, held, transport, staging, store })
 * if (result === null) await downloadFile({ ... }) // whole file
 */
export async function deltaDownload(options: DeltaDownloadOptions): Promise<DeltaDownloadResult | null> {
  const { staging, store, expected, file } = options;
  if (!staging.openRandomAccess || !store.readContent) return null;
  const planned = await planFileDelta(options);
  if (planned === null) return null;
  if (planned.plan.copies.length === 0) {
    // Nothing to copy: the file comes whole; its index is kept for the next update (it will be held then).
    await store.writeChunkIndex?.(chunkIndexName(expected.sha256, planned.index.params), planned.indexBytes).catch(() => undefined);
    return null;
  }
  const { plan } = planned;
  options.onPlan?.(plan);
  const where = `${file.version}/${file.path}`;
  const planId = `delta:${expected.sha256}:${expected.chunkIndex!.sha256}`;
  // Chunks an earlier attempt of this same plan made durable and recorded are kept; anything else (a
  // whole-file attempt, another plan, no strong validator) is written again.
  const kept = await keptChunks(staging, file, expected.size, planId);
  if (kept === null) await staging.remove(file);
  const target = await staging.openRandomAccess(file, expected.size);
  const progress = new DurableProgress(staging, file, expected.size, planId, kept, target, options.timers ?? REAL_TIMERS);
  try {
    const result = await assemble(target, plan, options, progress);
    await progress.idle();
    await target.close({ sync: true });
    await staging.removeRecord(file).catch(() => undefined);
    // The new file's index describes content the device now holds: the next update reads it from here.
    await store.writeChunkIndex?.(chunkIndexName(expected.sha256, planned.index.params), planned.indexBytes).catch(() => undefined);
    return result;
  } catch (error) {
    await progress.idle();
    if (isRestartRequired(error)) {
      await target.close({ sync: false }).catch(() => undefined);
      await staging.remove(file);
      // The file changed on the server since the kept chunks were fetched: this plan again, from nothing.
      if (kept !== null) return deltaDownload(options);
      // The server ignores Range, or the file changed under us: the whole file, from the start.
      return null;
    }
    // What was written is made durable, then recorded: the next attempt fetches only the rest.
    const durable = await target.close({ sync: true }).then(() => true, () => false);
    if (durable) await progress.record().catch(() => undefined);
    if (options.signal?.aborted) throw cancelled();
    if (error instanceof UpdateError) throw error;
    throw new UpdateError('STORAGE_FAILED', `Could not assemble ${where} from the chunks on the device (${(error as Error)?.message ?? error}).`, { cause: error });
  }
}

/** The kept chunks of a staged file: what its resume record lists, when made for this plan with a strong validator. */
interface KeptChunks {
  validator: string;
  completed: Array<[number, number]>;
}

async function keptChunks(staging: StagingArea, file: StagedFile, size: number, planId: string): Promise<KeptChunks | null> {
  const record = await staging.readRecord(file).catch(() => undefined);
  const validator = strong(record?.validator);
  if (record === undefined || record.plan !== planId || record.expectedSize !== size || validator === undefined || !record.completed?.length) return null;
  // Only bytes the staged file still has (it may be shorter than the record says: a file cut since).
  const staged = Math.min(size, await staging.size(file).catch(() => 0));
  const completed = record.completed.filter(([start, end]) => 0 <= start && start < end && end <= staged);
  return completed.length === 0 ? null : { validator, completed };
}

/**
 * The ranges of the staged file known written (copied, or fetched and verified), made durable and
 * recorded in the resume record by the download's checkpoints (download/checkpoints.ts).
 */
class DurableProgress {
  readonly done = new Coverage();
  validator: string | undefined;
  readonly #checkpoints: Checkpoints;

  constructor(
    private readonly staging: StagingArea,
    private readonly file: StagedFile,
    private readonly size: number,
    private readonly planId: string,
    kept: KeptChunks | null,
    target: RandomAccessFile,
    timers: Timers,
  ) {
    this.validator = kept?.validator;
    for (const [start, end] of kept?.completed ?? []) this.done.add(start, end);
    this.#checkpoints = new Checkpoints(
      () => (target.flush ? target.flush() : staging.sync(file)),
      (record) => staging.writeRecord(file, record),
      () => this.#snapshot(),
      timers,
    );
  }

  add(start: number, end: number): void {
    this.done.add(start, end);
    this.#checkpoints.written(end - start);
  }

  learned(validator: string | undefined): void {
    this.validator ??= strong(validator);
  }

  /** Writes the record now (the caller made the file durable). */
  async record(): Promise<void> {
    const snapshot = this.#snapshot();
    if (snapshot !== undefined) await this.staging.writeRecord(this.file, snapshot);
  }

  idle(): Promise<void> {
    return this.#checkpoints.idle();
  }

  #snapshot(): ResumeRecord | undefined {
    // Without a strong validator nothing fetched can be trusted later: no record.
    if (this.validator === undefined) return undefined;
    return { expectedSize: this.size, validator: this.validator, completed: this.done.ranges(), plan: this.planId };
  }
}

/** Covered ranges of the staged file, with waiters for a range to be covered. */
class Coverage {
  readonly #spans = new SpanSet();
  #waiters: Array<{ start: number; end: number; resolve: () => void; reject: (error: unknown) => void }> = [];
  #failure: unknown;

  add(start: number, end: number): void {
    this.#spans.add(start, end);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.covers(waiter.start, waiter.end)) return true;
      waiter.resolve();
      return false;
    });
  }

  ranges(): Array<[number, number]> {
    return this.#spans.list();
  }

  covers(start: number, end: number): boolean {
    return end <= start || this.#spans.endOf(start) >= end;
  }

  wait(start: number, end: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.covers(start, end)) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ start, end, resolve, reject }));
  }

  fail(error: unknown): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters = [];
  }
}

/**
 * Three things at once: the spans are fetched (each fetched chunk verified as it arrives), the held
 * chunks are copied, and one pass in file order hashes every byte as soon as it is written. Neither the
 * copy nor the hash waits for the network beyond the bytes it needs. Held bytes are not hashed chunk by
 * chunk on the way: the whole-file SHA-256 covers them. Only when it does not match (a held file damaged since
 * it was verified, a stale cached index) is every copied chunk checked, the bad ones fetched, and the
 * file hashed again.
 */
async function assemble(target: RandomAccessFile, plan: DeltaPlan, options: DeltaDownloadOptions, progress: DurableProgress): Promise<DeltaDownloadResult> {
  const { staging, expected } = options;
  const coverage = new Coverage();
  const kept = progress.done.ranges();
  for (const [start, end] of kept) coverage.add(start, end);
  const controller = new AbortController();
  const forward = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  let bytesFetched = 0;
  let validator = progress.validator;
  const written = (start: number, end: number) => {
    coverage.add(start, end);
    progress.add(start, end);
  };
  const fetchOptions = (spans: RangeSpan[], signal: AbortSignal) => ({
    url: options.url,
    file: target,
    spans,
    expectedSize: expected.size,
    transport: options.transport,
    createHash: () => staging.createHash(),
    signal,
    onWritten: written,
    onValidator: (learned: string | undefined) => progress.learned(learned),
    ...(validator === undefined ? {} : { validator }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.budget ? { budget: options.budget } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.onBytes ? { onBytes: options.onBytes } : {}),
  });
  // Chunks kept from an earlier attempt are not fetched again (nor verified one by one: the whole-file hash covers them).
  const spans = missingSpans(plan, progress.done);
  const fetching = spans.length === 0
    ? Promise.resolve()
    : fetchSpans(fetchOptions(spans, controller.signal)).then(
        (result) => {
          bytesFetched += result.bytesFetched;
          validator = result.validator;
        },
        (error: unknown) => {
          coverage.fail(error);
          throw error;
        },
      );
  fetching.catch(() => undefined); // awaited below; a failure also reaches the pass through coverage
  // Held chunks are copied in file order without waiting for the network; the whole-file hash follows
  // both, reading back each piece once it is written.
  const copying = copyHeld(target, plan, { store: options.store, onCopied: options.onCopied, done: progress.done }, controller.signal, written, (spans) => fetchSpans(fetchOptions(spans, controller.signal))).then(
    (result) => {
      bytesFetched += result.bytesFetched;
      return result.copiedBytes;
    },
    (error: unknown) => {
      coverage.fail(error);
      throw error;
    },
  );
  copying.catch(() => undefined); // awaited below; a failure also reaches the hash through coverage
  try {
    const whole = await staging.createHash();
    await hashStaged(target, 0, expected.size, whole, coverage);
    let copiedBytes = await copying;
    await fetching;
    let sha256 = whole.digest();
    if (sha256 !== expected.sha256) {
      const bad = await badCopies(target, plan, staging);
      if (bad.length > 0) {
        // Fetched in runs of neighbouring chunks, each verified; then the file is hashed again.
        const runs: ChunkCopy[][] = [];
        for (const copy of bad) {
          const run = runs.at(-1);
          if (run && run.at(-1)!.offset + run.at(-1)!.length === copy.offset) run.push(copy);
          else runs.push([copy]);
        }
        bytesFetched += (await fetchSpans(fetchOptions(runs.map(spanOf), controller.signal))).bytesFetched;
        copiedBytes -= bad.reduce((sum, copy) => sum + copy.length, 0);
        const again = await staging.createHash();
        await hashStaged(target, 0, expected.size, again);
        sha256 = again.digest();
      }
    }
    return { size: expected.size, sha256, resumedFrom: 0, bytesFetched, copiedBytes };
  } catch (error) {
    controller.abort(error);
    await Promise.all([fetching.catch(() => undefined), copying.catch(() => undefined)]);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
}

/** The plan's spans without the chunks already done, cut where kept chunks fall. */
function missingSpans(plan: DeltaPlan, done: Coverage): RangeSpan[] {
  const spans: RangeSpan[] = [];
  for (const span of plan.spans) {
    if (done.covers(span.start, span.end)) continue;
    if (!span.chunks?.length) {
      spans.push({ start: span.start, end: span.end, chunks: [] });
      continue;
    }
    let run: { start: number; end: number; chunks: FetchChunk[] } | undefined;
    for (const chunk of span.chunks) {
      const end = chunk.offset + chunk.length;
      if (done.covers(chunk.offset, end)) {
        run = undefined;
        continue;
      }
      if (run === undefined) spans.push((run = { start: chunk.offset, end, chunks: [] }));
      run.end = end;
      run.chunks.push(chunk);
    }
  }
  return spans;
}

/**
 * Hashes staged bytes [start, end) in order, waiting for each piece to be written when `coverage` is
 * given. The next piece is read (into the other of two buffers) while this one is hashed.
 */
async function hashStaged(target: RandomAccessFile, start: number, end: number, hash: { update(bytes: Uint8Array): void }, coverage?: Coverage): Promise<void> {
  const buffers = [new Uint8Array(READ_BYTES), new Uint8Array(READ_BYTES)];
  const readPiece = async (at: number, i: number) => {
    const until = Math.min(end, at + READ_BYTES);
    await coverage?.wait(at, until);
    return target.read(at, until - at, buffers[i % 2]);
  };
  let reading = start < end ? readPiece(start, 0) : undefined;
  for (let at = start, i = 0; reading !== undefined; at += READ_BYTES, i++) {
    const bytes = await reading;
    reading = at + READ_BYTES < end ? readPiece(at + READ_BYTES, i + 1) : undefined;
    reading?.catch(() => undefined); // awaited on the next turn
    hash.update(bytes);
  }
}

/** Segments copied at once: the copy is the kernel filling new page-cache pages, worth more than one thread. */
const COPY_LANES = 2;

/**
 * Copies the held chunks into the staged file, segments taken in file order by a few lanes (each reads
 * into its own buffer, then writes), marking each written range. A held file gone or shorter since:
 * its chunks are fetched.
 */
async function copyHeld(
  target: RandomAccessFile,
  plan: DeltaPlan,
  options: Pick<DeltaDownloadOptions, 'store' | 'onCopied'> & { done: Coverage },
  signal: AbortSignal,
  written: (start: number, end: number) => void,
  fetchRuns: (spans: RangeSpan[]) => Promise<{ bytesFetched: number }>,
): Promise<{ copiedBytes: number; bytesFetched: number }> {
  const segments = inFileOrder(plan).filter((segment): segment is CopySegment => segment.kind === 'copy');
  const largest = Math.max(0, ...segments.map((segment) => segment.length));
  let copiedBytes = 0;
  let bytesFetched = 0;
  let taken = 0;
  const lane = async () => {
    // One buffer per lane, reused: fresh memory for every segment costs the kernel more than the copy.
    const buffer = new Uint8Array(largest);
    for (let segment = segments[taken++]; segment !== undefined; segment = segments[taken++]) {
      signal.throwIfAborted();
      // Copied by an earlier attempt: the whole-file hash reads it back like any other piece.
      if (!options.done.covers(segment.offset, segment.offset + segment.length)) {
        const bytes = await options.store.readContent!(segment.content, segment.sourceOffset, segment.length, buffer).catch(() => null);
        if (bytes !== null && bytes.length === segment.length) {
          await target.write(segment.offset, bytes);
          written(segment.offset, segment.offset + segment.length);
        } else {
          // The held file is gone or shorter: these chunks come from the server.
          bytesFetched += (await fetchRuns([spanOf(segment.copies)])).bytesFetched;
        }
      }
      copiedBytes += segment.length;
      options.onCopied?.(segment.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(COPY_LANES, segments.length) }, lane));
  return { copiedBytes, bytesFetched };
}

/** The copied chunks whose staged bytes do not have the hash the new index gives them. */
async function badCopies(target: RandomAccessFile, plan: DeltaPlan, staging: StagingArea): Promise<ChunkCopy[]> {
  const bad: ChunkCopy[] = [];
  for (const copy of plan.copies) {
    const hash = await staging.createHash();
    hash.update(await target.read(copy.offset, copy.length));
    if (hash.digest() !== copy.sha256) bad.push(copy);
  }
  return bad;
}

/** One span over neighbouring chunks, each verified. */
function spanOf(copies: readonly ChunkCopy[]): RangeSpan {
  const last = copies.at(-1)!;
  return { start: copies[0]!.offset, end: last.offset + last.length, chunks: copies.map(({ offset, length, sha256 }) => ({ offset, length, sha256 })) };
}

interface CopySegment {
  kind: 'copy';
  /** Where the segment goes in the new file. */
  offset: number;
  length: number;
  content: string;
  sourceOffset: number;
  copies: ChunkCopy[];
}
type Segment = CopySegment | { kind: 'fetch'; start: number; end: number };

/** The largest run of held chunks read at once. */
const SEGMENT_BYTES = 8 * 1024 * 1024;

/**
 * The plan in file order: fetched spans, and copies merged into segments where they follow each other
 * in the new file and in the same held file (one read and one write for many chunks).
 */
export function inFileOrder(plan: DeltaPlan): Segment[] {
  const segments: Segment[] = plan.spans.map((span) => ({ kind: 'fetch' as const, start: span.start, end: span.end }));
  let current: CopySegment | undefined;
  for (const copy of plan.copies) {
    if (
      current !== undefined &&
      copy.from.content === current.content &&
      copy.offset === current.offset + current.length &&
      copy.from.offset === current.sourceOffset + current.length &&
      current.length + copy.length <= SEGMENT_BYTES
    ) {
      current.length += copy.length;
      current.copies.push(copy);
      continue;
    }
    current = { kind: 'copy', offset: copy.offset, length: copy.length, content: copy.from.content, sourceOffset: copy.from.offset, copies: [copy] };
    segments.push(current);
  }
  return segments.sort((a, b) => (a.kind === 'copy' ? a.offset : a.start) - (b.kind === 'copy' ? b.offset : b.start));
}

/**
 * The stored content of the versions the device holds, active first (bundled models excluded: they
 * live outside the model folder).
 * @example
 * const held = await heldContent(store)
 */
export async function heldContent(store: ModelStore): Promise<HeldContent[]> {
  if (!store.readContent) return [];
  const pointer = await store.readPointer().catch(() => null);
  if (pointer === null) return [];
  return [pointer.active, ...pointer.retained].filter((version) => version.bundledPath === undefined).flatMap((version) => version.files.map(({ sha256, size }) => ({ sha256, size })));
}
