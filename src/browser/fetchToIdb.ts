/**
 * Streams one file into IndexedDB staging with fetch(), hashing as bytes arrive (hash-wasm: WebCrypto
 * has no incremental SHA-256). Bytes are persisted in chunks, each with the hasher state after it, so a
 * later attempt (after a dropped connection, a cancel or a page reload) resumes with `Range` + `If-Range`
 * from the last persisted byte without reading the prefix again.
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import { set, type UseStore } from 'idb-keyval';
import { UpdateError } from '../errors.js';
import { parseRetryAfter } from '../retryAfter.js';
import type { FetchRequest, FetchResult } from '../store.js';
import { deleteRange, getAllInRange, prefixRange, type StagedChunk } from './idbLayout.js';

export interface FetchToIdbOptions extends FetchRequest {
  files: UseStore;
  /** Bytes gathered in memory before one chunk is written. */
  chunkBytes: number;
  /** No byte for this long fails the attempt with DOWNLOAD_STALLED. */
  stallTimeoutMs: number;
}

/** The staged chunks of one file, in order. */
export function readStagedChunks(files: UseStore, version: string, path: string): Promise<StagedChunk[]> {
  return getAllInRange<StagedChunk>(files, prefixRange(['s', version, path]));
}

async function freshHasher(): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.init();
  return hasher;
}

/**
 * Downloads (or resumes) one file into `['s', version, path, index]` chunks and returns its size and
 * SHA-256. Errors are UpdateErrors whose code says whether a retry can help; whatever arrived before an
 * error or an abort is kept for the next attempt.
 * @example
 * const { sha256 } = await fetchToIdb({ files, version: '1.0.0', file, url, signal, onBytes: () => {}, chunkBytes: 1 << 20, stallTimeoutMs: 30_000 })
 */
export async function fetchToIdb(options: FetchToIdbOptions): Promise<FetchResult> {
  const { files, version, file, url, signal, onBytes, onStart, chunkBytes, stallTimeoutMs } = options;
  const expected = file.size;
  const stagedRange = prefixRange(['s', version, file.path]);
  let chunks = await readStagedChunks(files, version, file.path);
  let last = chunks.at(-1);
  let hasher = await freshHasher();
  if (last && last.end > expected) {
    await deleteRange(files, stagedRange); // a prefix longer than the file cannot belong to it
    chunks = [];
    last = undefined;
  }
  if (last) hasher.load(last.state);
  let offset = last?.end ?? 0;
  let index = chunks.length;
  let validator = chunks[0]?.validator ?? null;
  let resumedFrom = offset;
  if (offset === expected && offset > 0) {
    return { path: file.path, size: offset, sha256: hasher.digest('hex'), bytesFetched: 0, resumedFrom };
  }

  const host = new URL(url).host;
  const stall = new AbortController();
  const onAbort = () => stall.abort();
  signal.addEventListener('abort', onAbort);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armStallTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), stallTimeoutMs);
  };
  const failure = (error: unknown): UpdateError => {
    if (error instanceof UpdateError) return error;
    if (signal.aborted) return new UpdateError('CANCELLED', 'The download was cancelled; the bytes received so far are kept for the next attempt.');
    if (stall.signal.aborted) {
      return new UpdateError('DOWNLOAD_STALLED', `No data came from ${host} for ${Math.round(stallTimeoutMs / 1000)} s; the download will be retried and resumed.`);
    }
    return new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${host} failed (${(error as Error)?.message ?? error}); the download will be retried and resumed.`, { cause: error });
  };

  let fetched = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const persistPending = async () => {
    if (pendingBytes === 0) return;
    const blob = new Blob(pending as BlobPart[]);
    const chunk: StagedChunk = { blob, end: offset + pendingBytes, state: hasher.save(), validator };
    pending = [];
    const bytes = pendingBytes;
    pendingBytes = 0;
    try {
      await set(['s', version, file.path, index], chunk, files);
    } catch (error) {
      throw new UpdateError('STORAGE_FAILED', `Could not store the download of ${file.path} in IndexedDB: ${(error as Error)?.message ?? error}. Free some browser storage for this site, then check again.`, { cause: error });
    }
    index += 1;
    offset += bytes;
  };

  try {
    armStallTimer();
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      if (validator) headers['if-range'] = validator;
    }
    const response = await fetch(url, { signal: stall.signal, headers, cache: 'no-store' }).catch((error: unknown) => {
      throw failure(error);
    });
    const status = response.status;
    if (status === 429 || status >= 500) {
      await response.body?.cancel();
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      throw new UpdateError('SERVICE_UNAVAILABLE', `${url} answered ${status}; try again later.`, retryAfterMs === undefined ? {} : { retryAfterMs });
    }
    const rangeStart = Number(/^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1] ?? NaN);
    if (status === 416 || (status === 206 && rangeStart !== offset)) {
      // The partial bytes do not fit what the server now holds: start over on the next attempt.
      await response.body?.cancel();
      await deleteRange(files, stagedRange);
      throw new UpdateError('NETWORK_UNAVAILABLE', `${url} answered ${status} to a request for bytes ${offset}-; the partial download was discarded and the next attempt starts over.`);
    }
    if (status !== 200 && status !== 206) {
      await response.body?.cancel();
      throw new UpdateError('DOWNLOAD_FAILED', `${url} answered ${status} ${response.statusText}`.trimEnd() + '; check the URL in the manifest and the access rights.');
    }
    if (status === 200 && offset > 0) {
      // The server ignored Range or the file changed (If-Range failed): the body is the whole file.
      await deleteRange(files, stagedRange);
      offset = 0;
      index = 0;
      resumedFrom = 0;
      hasher = await freshHasher();
    }
    validator = response.headers.get('etag') ?? response.headers.get('last-modified');
    onStart?.(offset);
    if (!response.body) throw new UpdateError('DOWNLOAD_FAILED', `${url} answered without a body; the server does not serve plain files.`);
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        armStallTimer();
        if (offset + pendingBytes + value.byteLength > expected) {
          await deleteRange(files, stagedRange);
          throw new UpdateError('SIZE_MISMATCH', `${url} sent more than the ${expected} bytes the manifest promises for ${file.path}; the download was stopped and discarded. The update service should publish again.`);
        }
        hasher.update(value);
        pending.push(value);
        pendingBytes += value.byteLength;
        fetched += value.byteLength;
        onBytes(value.byteLength);
        if (pendingBytes >= chunkBytes) await persistPending();
      }
    } catch (error) {
      await reader.cancel().catch(() => undefined);
      throw error;
    }
    await persistPending();
    if (offset < expected) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${host} ended after ${offset} of ${expected} bytes; what arrived is kept and the next attempt resumes it.`);
    }
    return { path: file.path, size: offset, sha256: hasher.digest('hex'), bytesFetched: fetched, resumedFrom };
  } catch (error) {
    const reported = failure(error);
    // Keep what arrived, unless the file was discarded on purpose.
    if (reported.code !== 'SIZE_MISMATCH' && reported.code !== 'STORAGE_FAILED') await persistPending().catch(() => undefined);
    throw reported;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
