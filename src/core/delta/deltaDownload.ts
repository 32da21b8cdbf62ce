/**
 * A differential download of one file: its chunk index (checked against the signed manifest) is
 * compared with the chunks of the files the device holds; held chunks are copied into the staged file,
 * the rest is fetched as coalesced single `Range` spans (download/fetchSpans.ts, several connections,
 * each chunk verified as it arrives). One pass in file order copies, waits for fetched spans and hashes
 * the whole file, so the result carries the whole-file SHA-256 the version is verified with, exactly
 * as a whole-file download's: nothing changes in what is trusted.
 *
 * Not applicable (resolves null, the caller downloads the file whole): no random-access staging, a
 * store that cannot read its content, no chunk held locally, an index the server does not have, a
 * server that ignores Range, or a file that changed on the server under us.
 */
import type { ManifestFile } from '../../../machines/types.js';
import { decodeChunkIndex, type ChunkIndex } from '../chunks/chunkIndex.js';
import { cancelled } from '../download/downloadErrors.js';
import { fetchSpans, isRestartRequired, type FetchSpan as RangeSpan } from '../download/fetchSpans.js';
import type { DownloadFileResult } from '../download/downloadFile.js';
import type { RateBudget } from '../download/rateBudget.js';
import type { DownloadLimits, Timers } from '../download/transferGuard.js';
import { UpdateError } from '../errors.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { RandomAccessFile, StagedFile, StagingArea } from '../ports/stagingArea.js';
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
  // What an earlier whole-file attempt left is not reused: the plan writes every byte again.
  await staging.remove(file);
  const target = await staging.openRandomAccess(file, expected.size);
  try {
    const result = await assemble(target, plan, options);
    await target.close({ sync: true });
    await staging.removeRecord(file).catch(() => undefined);
    // The new file's index describes content the device now holds: the next update reads it from here.
    await store.writeChunkIndex?.(chunkIndexName(expected.sha256, planned.index.params), planned.indexBytes).catch(() => undefined);
    return result;
  } catch (error) {
    await target.close({ sync: false }).catch(() => undefined);
    if (isRestartRequired(error)) {
      // The server ignores Range, or the file changed under us: the whole file, from the start.
      await staging.remove(file);
      return null;
    }
    if (options.signal?.aborted) throw cancelled();
    if (error instanceof UpdateError) throw error;
    throw new UpdateError('STORAGE_FAILED', `Could not assemble ${where} from the chunks on the device (${(error as Error)?.message ?? error}).`, { cause: error });
  }
}

/** Covered ranges of the staged file, with waiters for a range to be covered. */
class Coverage {
  #ranges: Array<[number, number]> = [];
  #waiters: Array<{ start: number; end: number; resolve: () => void; reject: (error: unknown) => void }> = [];
  #failure: unknown;

  add(start: number, end: number): void {
    const merged: Array<[number, number]> = [];
    let [s, e] = [start, end];
    for (const [a, b] of this.#ranges) {
      if (b < s || a > e) merged.push([a, b]);
      else [s, e] = [Math.min(a, s), Math.max(b, e)];
    }
    merged.push([s, e]);
    this.#ranges = merged.sort((x, y) => x[0] - y[0]);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.covers(waiter.start, waiter.end)) return true;
      waiter.resolve();
      return false;
    });
  }

  covers(start: number, end: number): boolean {
    return this.#ranges.some(([a, b]) => a <= start && end <= b);
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
 * Fetches the spans in the background (each fetched chunk verified as it arrives) while one pass in
 * file order copies the held chunks and hashes every byte. Held bytes are not hashed chunk by chunk on
 * the way: the whole-file SHA-256 covers them. Only when it does not match (a held file damaged since
 * it was verified, a stale cached index) is every copied chunk checked, the bad ones fetched, and the
 * file hashed again.
 */
async function assemble(target: RandomAccessFile, plan: DeltaPlan, options: DeltaDownloadOptions): Promise<DeltaDownloadResult> {
  const { staging, store, expected } = options;
  const coverage = new Coverage();
  const controller = new AbortController();
  const forward = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  let bytesFetched = 0;
  let validator: string | undefined;
  const fetchOptions = (spans: RangeSpan[], signal: AbortSignal) => ({
    url: options.url,
    file: target,
    spans,
    expectedSize: expected.size,
    transport: options.transport,
    createHash: () => staging.createHash(),
    signal,
    onWritten: (start: number, end: number) => coverage.add(start, end),
    ...(validator === undefined ? {} : { validator }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.budget ? { budget: options.budget } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.onBytes ? { onBytes: options.onBytes } : {}),
  });
  const spans = plan.spans.map((span) => ({ start: span.start, end: span.end, chunks: span.chunks }));
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
  try {
    const whole = await staging.createHash();
    const segments = inFileOrder(plan);
    // The next copy's bytes are read while this one is hashed and written.
    const reads = new Map<Segment, Promise<Uint8Array | null>>();
    const readAhead = (from: number) => {
      const next = segments.slice(from).find((segment): segment is CopySegment => segment.kind === 'copy');
      if (next && !reads.has(next)) reads.set(next, store.readContent!(next.content, next.sourceOffset, next.length).catch(() => null));
    };
    let copiedBytes = 0;
    for (const [i, segment] of segments.entries()) {
      options.signal?.throwIfAborted();
      if (segment.kind === 'fetch') {
        readAhead(i + 1);
        await hashStaged(target, segment.start, segment.end, whole, coverage);
        continue;
      }
      readAhead(i);
      const bytes = await reads.get(segment)!;
      reads.delete(segment);
      readAhead(i + 1);
      if (bytes !== null && bytes.length === segment.length) {
        // The write (off the main thread) and the hash (on it) read the same bytes at once.
        const writing = target.write(segment.offset, bytes);
        whole.update(bytes);
        await writing;
      } else {
        // The held file is gone or shorter: these chunks come from the server.
        bytesFetched += (await fetchSpans(fetchOptions([spanOf(segment.copies)], controller.signal))).bytesFetched;
        await hashStaged(target, segment.offset, segment.offset + segment.length, whole);
      }
      copiedBytes += segment.length;
      options.onCopied?.(segment.length);
    }
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
    await fetching.catch(() => undefined);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
}

/** Hashes staged bytes [start, end), waiting for each piece to be written when `coverage` is given. */
async function hashStaged(target: RandomAccessFile, start: number, end: number, hash: { update(bytes: Uint8Array): void }, coverage?: Coverage): Promise<void> {
  for (let at = start; at < end; at += READ_BYTES) {
    const until = Math.min(end, at + READ_BYTES);
    await coverage?.wait(at, until);
    hash.update(await target.read(at, until - at));
  }
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
