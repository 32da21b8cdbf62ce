/**
 * Fetches byte spans of one URL into a file written at any offsets, over several connections at once:
 * the engine of parallel whole-file downloads (downloadRanged.ts) and of differential ones (the spans
 * a new version does not share with the versions on the device).
 *
 * - Single ranges only (`Range: bytes=a-b`, never multi-range: static hosts reject or mangle those),
 *   each conditional on the file's strong validator (`If-Range`).
 * - The first request goes alone: its answer says whether the server honours Range (206 with the
 *   expected total) before more connections open. A 200 is the whole file (taken as such when
 *   `acceptWholeBody`, else the caller starts over); a 200 or another validator later means the file
 *   changed under us: {@link RestartRequired}.
 * - The others open only if the first connection turns out slow (connectionProbe.ts); found fast, it
 *   stays alone and fetches the rest of each span in one request.
 * - Each listed chunk is SHA-256-verified as its bytes arrive; one that fails is fetched once more,
 *   then the attempt fails with INTEGRITY_MISMATCH.
 * - Same guards, errors and redirects as downloadFile (sendRequest.ts); one shared bandwidth budget.
 * - What arrived is written before the call settles, whatever ended it; `onWritten` reports it
 *   (verified chunks only), so the caller can record what a later attempt keeps.
 */
import { UpdateError } from '../errors.js';
import type { RandomAccessFile, Sha256 } from '../ports/stagingArea.js';
import type { Transport, TransportResponse } from '../ports/transport.js';
import { brokenRanges, cancelled, endedEarly, networkError, sizeMismatch } from './downloadErrors.js';
import { ConnectionProbe } from './connectionProbe.js';
import { RangeWriter } from './rangeWriter.js';
import type { RateBudget } from './rateBudget.js';
import { limitsUnderCap, Pacer } from './rateBudget.js';
import { normalizeHeaders, parseUrl } from './requestHeaders.js';
import { contentRange, declaredTotal, recordValidator, sendRequest, throwIfAborted, type SentRequest } from './sendRequest.js';
import { REAL_TIMERS, resolveConnections, resolveLimits, type DownloadLimits, type GuardLimits, type Timers } from './transferGuard.js';

/** One chunk of a span, at its offset in the whole file, with the SHA-256 its bytes must have. */
export interface FetchChunk {
  offset: number;
  length: number;
  /** Lowercase hex. */
  sha256: string;
}

/** Bytes [start, end) of the file to fetch; `chunks` (inside it) are verified as they arrive. */
export interface FetchSpan {
  start: number;
  /** Exclusive. */
  end: number;
  chunks?: FetchChunk[];
}

export interface FetchSpansOptions {
  /** Absolute http: or https: URL. */
  url: string;
  /** Where the bytes go, each at its offset. */
  file: RandomAccessFile;
  spans: FetchSpan[];
  /** Size of the whole file: a server that says otherwise fails with SIZE_MISMATCH. */
  expectedSize: number;
  /** The validator the bytes already in `file` belong to (sent as If-Range). Absent: the first 206's becomes it. */
  validator?: string;
  transport: Transport;
  /** A fresh SHA-256 for each listed chunk (the staging area's `createHash`). */
  createHash: () => Promise<Sha256>;
  /** Connections at once. Default 4. */
  connections?: number;
  /** Spans longer than this are cut into parts fetched in parallel (at chunk boundaries). Default 8 MiB. */
  minPartBytes?: number;
  /**
   * No part longer than this (unless one chunk is): parts go out in file order, so the connections work
   * side by side near the start of what is missing, and whatever hashes the file in order follows
   * closely instead of reading most of it back at the end. Default 16 MiB; a connection alone (one
   * allowed, or the first found fast) fetches the rest of each span in one request instead.
   */
  maxPartBytes?: number;
  /** Take a 200 to the first request as the whole file (written from 0), instead of failing with RestartRequired. */
  acceptWholeBody?: boolean;
  /** Abort: UpdateError('CANCELLED'); what arrived is written and reported first. */
  signal?: AbortSignal;
  /** Bytes just received. */
  onBytes?: (delta: number) => void;
  /** Bytes of parts without chunks as they arrive, at their position in the file (valid only during the call): for hashing in order. */
  onData?: (position: number, bytes: Uint8Array) => void;
  /** [start, end) is written (not yet durable) and its chunks verified. */
  onWritten?: (start: number, end: number) => void;
  /** The first request got the whole file (200, `acceptWholeBody`): everything else in the file is void. Awaited before its bytes come. */
  onWholeBody?: () => void | Promise<void>;
  /** The validator was learned from the first answer (none was given). */
  onValidator?: (validator: string | undefined) => void;
  /** Guards of every connection (see DownloadLimits). */
  limits?: DownloadLimits;
  timers?: Timers;
  /** Request headers (Authorization, ...). */
  headers?: Record<string, string>;
  /** The bandwidth cap shared by every connection of the update. */
  budget?: RateBudget;
}

export interface FetchSpansResult {
  /** Bytes received over the network (refetched chunks included). */
  bytesFetched: number;
  /** The validator the file's bytes belong to (learned from the first 206 when none was given). */
  validator?: string;
  /** The server sent the whole file instead (see `acceptWholeBody`). */
  wholeBody: boolean;
}

/**
 * The file changed on the server while it downloaded, or the server stopped honouring Range: the
 * bytes fetched so far cannot be combined with what comes now. The caller deletes them and starts over.
 */
export class RestartRequired extends UpdateError {
  constructor(
    url: URL,
    readonly reason: 'changed' | 'no-ranges',
  ) {
    super(
      'DOWNLOAD_FAILED',
      reason === 'changed'
        ? `${url.href} changed on the server during the download (its validator is not the one the kept bytes came with); the partial file must be discarded and the download started over.`
        : `${url.href} answered a range request with the whole file; the partial file must be discarded and the download started over as one plain request.`,
    );
  }
}

/** @example if (isRestartRequired(error)) { await staging.remove(file); ... } */
export function isRestartRequired(error: unknown): error is RestartRequired {
  return error instanceof RestartRequired;
}

const MIB = 1024 * 1024;
/** Errors after which the other connections still finish their parts: what they fetch is kept. */
const KEEP_GOING = new Set(['NETWORK_UNAVAILABLE', 'DOWNLOAD_STALLED', 'SERVICE_UNAVAILABLE']);

interface Part {
  start: number;
  end: number;
  chunks: FetchChunk[];
}

/**
 * Fetches `spans` of `url` into `file` and resolves once every byte is written (not synced). Never
 * retries the attempt: a failure is an UpdateError, after what arrived was written and reported.
 *
 * @example
 * const file = await staging.openRandomAccess({ version: '1.2.0', path: 'model.bin' }, size)
 * await fetchSpans({ url, file, spans: [{ start: 0, end: 4096 }, { start: 1 << 20, end: size }], expectedSize: size,
 *   validator: '"abc"', transport, createHash: () => staging.createHash(), onWritten: (a, b) => done.add(a, b) })
 * await file.close({ sync: true })
 */
export async function fetchSpans(options: FetchSpansOptions): Promise<FetchSpansResult> {
  const { expectedSize, file, transport } = options;
  const url = parseUrl(options.url);
  const limits = resolveLimits(options.limits);
  const timers = options.timers ?? REAL_TIMERS;
  const connections = resolveConnections({ connections: options.connections });
  const parts = planParts(options.spans, expectedSize, connections, options.minPartBytes ?? 8 * MIB, options.maxPartBytes ?? (connections === 1 ? Number.POSITIVE_INFINITY : 16 * MIB));
  const headers = normalizeHeaders(options.headers);
  delete headers.range;
  delete headers['if-range'];
  throwIfAborted(options.signal);

  // One abort for all connections: the caller's, or a failure no other connection should outlive.
  const all = new AbortController();
  const forward = () => all.abort(cancelled());
  options.signal?.addEventListener('abort', forward, { once: true });

  const state = {
    url,
    headers,
    validator: options.validator,
    bytesFetched: 0,
    wholeBody: false,
    /** Set by the first failure; no connection takes a new part after it. */
    failure: undefined as UpdateError | undefined,
  };
  const queue = parts.slice();
  const workers: Array<Promise<void>> = [];
  const context: PartContext = { options, limits, timers, state, signal: all.signal, connections, slots: [] };

  const fail = (error: unknown) => {
    const failure = error instanceof UpdateError ? error : networkError(error, state.url, 'body');
    state.failure ??= failure;
    if (!KEEP_GOING.has(failure.code)) all.abort(failure);
  };
  const worker = async (first?: Part) => {
    for (let part = first ?? queue.shift(); part !== undefined && state.failure === undefined; part = queue.shift()) {
      try {
        await fetchPart(part, context, false);
      } catch (error) {
        fail(error);
      }
    }
  };
  // The others open only when the first connection turns out slow (connectionProbe.ts).
  const probe = new ConnectionProbe(
    timers,
    () => state.bytesFetched,
    () => {
      if (state.wholeBody || state.failure !== undefined) return;
      for (let i = 1; i < connections && queue.length > 0; i++) workers.push(worker());
    },
  );
  // The first connection alone: once it is known to be fast, the rest of each span goes in one request.
  const alone = async () => {
    while (state.failure === undefined) {
      if (probe.fast) mergeContiguous(queue);
      const part = queue.shift();
      if (part === undefined) break;
      try {
        await fetchPart(part, context, false);
      } catch (error) {
        fail(error);
      }
    }
  };

  try {
    const first = queue.shift();
    if (first !== undefined) {
      // Alone until its answer says the server honours Range; then the probe decides whether the others join.
      try {
        await fetchPart(first, context, true, () => {
          if (!state.wholeBody && connections > 1 && queue.length > 0) probe.start();
        });
      } catch (error) {
        fail(error);
      }
      // This connection goes on with the parts left, beside the others if they opened.
      if (!state.wholeBody) workers.push(probe.slow ? worker() : alone());
    }
    // Workers may join while others run (the probe opens them): wait until none is left.
    while (workers.length > 0) await Promise.all(workers.splice(0));
  } finally {
    probe.dispose();
    options.signal?.removeEventListener('abort', forward);
  }
  if (state.failure !== undefined) throw options.signal?.aborted ? cancelled() : state.failure;
  if (options.signal?.aborted) throw cancelled();
  return { bytesFetched: state.bytesFetched, ...(state.validator === undefined ? {} : { validator: state.validator }), wholeBody: state.wholeBody };
}

interface PartContext {
  options: FetchSpansOptions;
  limits: GuardLimits;
  timers: Timers;
  state: {
    url: URL;
    headers: Record<string, string>;
    validator: string | undefined;
    bytesFetched: number;
    wholeBody: boolean;
    failure: UpdateError | undefined;
  };
  signal: AbortSignal;
  connections: number;
  /** Write slots every request of the call reuses. */
  slots: Uint8Array[];
}

/**
 * Fetches one part, in as many requests as it takes: a server may answer a shorter range, and a chunk
 * that fails its hash is fetched once more.
 */
async function fetchPart(part: Part, context: PartContext, first: boolean, onRangesConfirmed?: () => void): Promise<void> {
  const { options, state } = context;
  const refetched = new Set<number>();
  let position = part.start;
  let end = part.end;
  let chunks = part.chunks;
  while (position < end) {
    if (context.signal.aborted) throw context.signal.reason instanceof UpdateError ? context.signal.reason : cancelled();
    const sent = await sendRequest({
      transport: options.transport,
      url: state.url,
      headers: state.headers,
      range: `bytes=${position}-${end - 1}`,
      ...(state.validator === undefined ? {} : { validator: state.validator }),
      signal: context.signal,
      limits: limitsUnderCap(context.limits, options.budget, context.connections),
      timers: context.timers,
      href: options.url,
    });
    state.url = sent.url;
    state.headers = sent.headers;
    const { response } = sent;
    let bodyEnd: number;
    try {
      bodyEnd = checkHead(response, sent.url, position, context, first && position === part.start);
    } catch (error) {
      sent.stop();
      throw error;
    }
    if (response.status === 200) {
      // The whole file, from byte 0: this connection writes it all, nobody else runs.
      state.wholeBody = true;
      await options.onWholeBody?.();
      position = 0;
      end = bodyEnd;
      chunks = [];
    }
    onRangesConfirmed?.();
    onRangesConfirmed = undefined;
    const hashers = await Promise.all(chunks.filter((chunk) => chunk.offset + chunk.length > position).map(async (chunk) => ({ chunk, hash: await options.createHash() })));
    const outcome = await receiveRange(sent, position, bodyEnd, hashers, context).finally(sent.stop);
    const progressed = outcome.position > position;
    position = outcome.position;
    if (outcome.badChunk !== undefined) {
      if (refetched.has(outcome.badChunk.offset)) {
        throw new UpdateError(
          'INTEGRITY_MISMATCH',
          `Bytes ${outcome.badChunk.offset}-${outcome.badChunk.offset + outcome.badChunk.length - 1} of ${sent.url.href} failed their SHA-256 twice; the server holds a corrupt copy. Tell the publisher, or try another mirror.`,
        );
      }
      refetched.add(outcome.badChunk.offset);
      position = outcome.badChunk.offset;
      continue;
    }
    if (outcome.failure !== undefined) throw outcome.failure;
    if (!progressed) throw endedEarly(sent.url, position, end);
    first = false;
  }
}

/** Checks the head of a range's answer; returns where its body ends. */
function checkHead(response: TransportResponse, url: URL, position: number, context: PartContext, first: boolean): number {
  const { options, state } = context;
  const { expectedSize } = options;
  const { status, headers } = response;
  if (status === 416) throw new RestartRequired(url, 'changed');
  if (status === 200) {
    if (!first || !options.acceptWholeBody || state.bytesFetched > 0) throw new RestartRequired(url, state.validator === undefined ? 'no-ranges' : 'changed');
    const total = declaredTotal(headers, 200);
    if (total !== undefined && total !== expectedSize) throw sizeMismatch(url, `the server says it holds ${total} bytes`, expectedSize);
    state.validator = recordValidator(headers).validator;
    options.onValidator?.(state.validator);
    return expectedSize;
  }
  const range = contentRange(headers);
  if (range === undefined || range.start !== position || range.last < position) throw brokenRanges(url, status, false, position);
  if (range.total !== undefined && range.total !== expectedSize) throw sizeMismatch(url, `the server says it holds ${range.total} bytes`, expectedSize);
  const validator = recordValidator(headers).validator;
  if (state.validator === undefined) {
    state.validator = validator;
    options.onValidator?.(validator);
  } else if (validator !== undefined && validator !== state.validator) throw new RestartRequired(url, 'changed');
  return Math.min(range.last + 1, expectedSize);
}

interface RangeOutcome {
  /** Where the verified, written bytes of this request end. */
  position: number;
  badChunk?: FetchChunk;
  failure?: UpdateError;
}

/**
 * Streams one answer into the file: chunks hashed as their bytes arrive, the shared budget drawn from,
 * every arrived byte written before it resolves. A chunk that fails its hash stops the request.
 */
async function receiveRange(sent: SentRequest, start: number, bodyEnd: number, hashers: Array<{ chunk: FetchChunk; hash: Sha256 }>, context: PartContext): Promise<RangeOutcome> {
  const { response, guard, attempt, url } = sent;
  const { options, state, timers } = context;
  let received = start;
  let verified = start;
  let badChunk: FetchChunk | undefined;
  let next = 0; // the first hasher not yet complete
  let writerFull = false;
  const resume = () => {
    if (!writerFull && !pacer.paused && !attempt.failure) response.resume();
  };
  const pacer = new Pacer(options.budget, timers, resume, () => guard.arrived(0));
  const writer = new RangeWriter(options.file, start, {
    pool: context.slots,
    onDrain: () => {
      writerFull = false;
      resume();
    },
    onError: (error) => attempt.fail(error instanceof UpdateError ? error : networkError(error, url, 'body')),
    onWritten: (written) => report(written),
  });
  let reported = start;
  const report = (written: number) => {
    const upTo = Math.min(written, verified);
    if (upTo > reported) {
      options.onWritten?.(reported, upTo);
      reported = upTo;
    }
  };
  guard.startBody();
  let bodyError: unknown;
  try {
    await response.receive({
      readBytes: () => pacer.readBytes(),
      write(bytes) {
        if (attempt.failure || badChunk) return false;
        guard.arrived(bytes.length);
        if (received + bytes.length > bodyEnd) {
          attempt.fail(sizeMismatch(url, `it sent more than the ${bodyEnd - start} bytes of the range`, options.expectedSize));
          return false;
        }
        const at = received;
        if (hashers.length === 0) options.onData?.(at, bytes);
        // Chunks this piece touches: hashed, and checked when complete.
        while (next < hashers.length) {
          const { chunk, hash } = hashers[next]!;
          const from = Math.max(at, chunk.offset);
          const to = Math.min(at + bytes.length, chunk.offset + chunk.length);
          if (to > from) hash.update(bytes.subarray(from - at, to - at));
          if (to < chunk.offset + chunk.length) break;
          if (hash.digest() !== chunk.sha256) {
            // The bytes before it are good: written like any, so the refetch starts at the bad chunk.
            const good = chunk.offset - at;
            if (good > 0) {
              received = verified = chunk.offset;
              state.bytesFetched += good;
              options.onBytes?.(good);
              writer.push(bytes.subarray(0, good));
            }
            badChunk = chunk;
            attempt.fail(new UpdateError('INTEGRITY_MISMATCH', `chunk at ${chunk.offset} failed its hash`));
            return false;
          }
          next++;
        }
        received += bytes.length;
        const open = hashers[next];
        verified = open !== undefined && open.chunk.offset < received ? open.chunk.offset : received;
        state.bytesFetched += bytes.length;
        options.onBytes?.(bytes.length);
        if (!writer.push(bytes)) writerFull = true;
        return pacer.take(bytes.length) && !writerFull;
      },
    });
  } catch (error) {
    bodyError = error;
  }
  guard.dispose();
  pacer.dispose();
  await writer.end().catch(() => undefined);
  const writeError = writer.error;
  report(writer.written);
  if (badChunk !== undefined) return { position: Math.min(verified, writer.written), badChunk };
  const failure =
    writeError !== undefined
      ? attempt.failure ?? networkError(writeError, url, 'body')
      : attempt.failure ?? (bodyError === undefined ? undefined : context.signal.aborted ? cancelled() : networkError(bodyError, url, 'body'));
  if (failure === undefined && received < bodyEnd) return { position: reported, failure: endedEarly(url, received, bodyEnd) };
  return failure === undefined ? { position: reported } : { position: reported, failure };
}

/**
 * The spans, checked, cut into parts: enough that every connection has work, none smaller than
 * `minPartBytes` unless its span is, none larger than `maxPartBytes`, cuts only at chunk boundaries.
 */
function planParts(spans: FetchSpan[], expectedSize: number, connections: number, minPartBytes: number, maxPartBytes: number): Part[] {
  let total = 0;
  let last = 0;
  for (const span of spans) {
    if (!Number.isSafeInteger(span.start) || !Number.isSafeInteger(span.end) || span.start < last || span.end <= span.start || span.end > expectedSize) {
      throw new UpdateError('INVALID_ARGUMENT', `Spans must be sorted, disjoint, non-empty and inside the ${expectedSize} bytes of the file; got ${span.start}-${span.end}.`);
    }
    for (const chunk of span.chunks ?? []) {
      if (chunk.offset < span.start || chunk.offset + chunk.length > span.end || chunk.length <= 0) {
        throw new UpdateError('INVALID_ARGUMENT', `Chunk ${chunk.offset}+${chunk.length} is not inside its span ${span.start}-${span.end}.`);
      }
    }
    last = span.end;
    total += span.end - span.start;
  }
  const target = Math.min(maxPartBytes, Math.max(minPartBytes, Math.ceil(total / connections)));
  const parts: Part[] = [];
  for (const span of spans) {
    const chunks = [...(span.chunks ?? [])].sort((a, b) => a.offset - b.offset);
    let start = span.start;
    while (start < span.end) {
      let end = Math.min(span.end, start + target);
      if (span.end - end < target / 4) end = span.end; // no sliver at the end
      // Never inside a chunk: move the cut to the end of the chunk it falls in.
      const inside = chunks.find((chunk) => chunk.offset < end && chunk.offset + chunk.length > end);
      if (inside !== undefined) end = inside.offset + inside.length;
      parts.push({ start, end, chunks: chunks.filter((chunk) => chunk.offset >= start && chunk.offset < end) });
      start = end;
    }
  }
  return parts;
}

/** Joins queued parts that follow one another (same span) into one: one request each for a connection alone. */
function mergeContiguous(queue: Part[]): void {
  const merged: Part[] = [];
  for (const part of queue) {
    const last = merged.at(-1);
    if (last !== undefined && last.end === part.start) merged[merged.length - 1] = { start: last.start, end: part.end, chunks: [...last.chunks, ...part.chunks] };
    else merged.push(part);
  }
  queue.splice(0, queue.length, ...merged);
}
