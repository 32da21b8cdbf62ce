/**
 * The one download algorithm of a model file, whatever the platform: a GET through a Transport into a
 * StagingArea, hashed as the bytes arrive, resumed with Range / If-Range from what an earlier attempt
 * kept. It owns redirects, validators, 416, declared sizes, status codes, the slow-retrieval guards
 * and every error text; the ports only move bytes.
 *
 * One call is one attempt: the statechart owns retries and back-off, and this function leaves the
 * partial file in a state the next attempt resumes.
 */
import { UpdateError } from '../errors.js';
import type { StagedFile, StagedWriter, StagingArea, Sha256 } from '../ports/stagingArea.js';
import { storageError } from '../storageError.js';
import type { Transport, TransportResponse } from '../ports/transport.js';
import { brokenRanges, cancelled, endedEarly, networkError, sizeMismatch } from './downloadErrors.js';
import { normalizeHeaders, parseUrl } from './requestHeaders.js';
import { RANGE_VALIDATOR_HEADER, sendRequest, type Attempt, contentRange, declaredTotal, recordValidator, storage, strong, throwIfAborted } from './sendRequest.js';
import { limitsUnderCap, Pacer, type RateBudget } from './rateBudget.js';
import { REAL_TIMERS, resolveLimits, type DownloadLimits, type Timers, type TransferGuard } from './transferGuard.js';

export interface DownloadFileOptions {
  /** Absolute http: or https: URL. */
  url: string;
  /** Which staged file: a prefix an earlier attempt left there is resumed. */
  file: StagedFile;
  /** Size from the manifest: the download fails with SIZE_MISMATCH as soon as the server says or sends otherwise. */
  expectedSize: number;
  transport: Transport;
  staging: StagingArea;
  /** Abort rejects with UpdateError('CANCELLED') and keeps the partial file for a later resume. */
  signal?: AbortSignal;
  /** Called with the bytes just received; the caller computes progress. */
  onBytes?: (delta: number) => void;
  /**
   * Called once the server has agreed where the body starts, before the first onBytes: `offset` is the
   * number of bytes kept from an earlier attempt (0 when starting over).
   */
  onStart?: (offset: number) => void;
  /** Header deadline, stall timeout, minimum throughput (see DownloadLimits for the defaults). */
  limits?: DownloadLimits;
  /** Timer source for the guards; default the real one. */
  timers?: Timers;
  /** Request headers (Authorization, ...); credentials are dropped when a redirect leaves the origin. */
  headers?: Record<string, string>;
  /** The update's bandwidth cap (rateBudget.ts), shared with its other downloads. */
  budget?: RateBudget;
}

export interface DownloadFileResult {
  /** Bytes staged at the end (equals expectedSize). */
  size: number;
  /** Lowercase hex SHA-256 of the whole file, the kept prefix included. */
  sha256: string;
  /** Bytes kept from an earlier attempt (0 when started over). */
  resumedFrom: number;
  /** Bytes received over the network in this call. */
  bytesFetched: number;
}

export { RANGE_VALIDATOR_HEADER } from './sendRequest.js';

/**
 * Downloads `url` into the staged `file`, resuming a prefix left by an earlier attempt, and returns the
 * SHA-256 of the whole file; the staged bytes are durable before it resolves. Never retries: every
 * failure is an {@link UpdateError} whose code tells the caller whether a retry can help.
 *
 * @example
 * const { sha256 } = await downloadFile({
 *   url: 'https://models.example.com/1.2.0/model.bin',
 *   file: { version: '1.2.0', path: 'model.bin' },
 *   expectedSize: 734_003_200,
 *   transport: createNodeTransport(),
 *   staging: new FileStagingArea('/var/lib/app/models'),
 * });
 * if (sha256 !== manifestFile.sha256) throw new Error('corrupt download');
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const { file, expectedSize, transport, staging, signal, onBytes, onStart } = options;
  let url = parseUrl(options.url);
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UpdateError('INVALID_ARGUMENT', `expectedSize must be a whole number of bytes, got ${expectedSize}.`);
  }
  const limits = resolveLimits(options.limits);
  const timers = options.timers ?? REAL_TIMERS;
  let headers = normalizeHeaders(options.headers);
  // Ranges are this function's to write.
  delete headers.range;
  delete headers[RANGE_VALIDATOR_HEADER];
  throwIfAborted(signal);
  const where = `${file.version}/${file.path}`;

  const record = await storage(() => staging.readRecord(file), `read the resume record of ${where}`);
  let prefix = await storage(() => staging.size(file), `read ${where}`);
  // A file written by ranges (downloadParallel.ts): only its first span, if it starts at 0, is a prefix.
  const firstSpan = record?.completed?.[0];
  if (record?.completed !== undefined) prefix = firstSpan?.[0] === 0 ? Math.min(prefix, firstSpan[1]) : 0;
  // A prefix of a different size of file cannot belong to this one, whatever the server says.
  if (prefix > expectedSize || (prefix > 0 && record !== undefined && record.expectedSize !== expectedSize)) {
    await storage(() => staging.remove(file), `remove ${where}`);
    prefix = 0;
  }
  let validator = prefix > 0 ? strong(record?.validator) : undefined;

  let hash: Sha256;
  if (prefix > 0) {
    const hashed = await storage(() => staging.hashPrefix(file, prefix, signal ?? new AbortController().signal), `read ${where}`);
    throwIfAborted(signal);
    hash = hashed.hash;
    prefix = hashed.length;
  } else {
    hash = await staging.createHash();
  }
  if (prefix === expectedSize && prefix > 0) {
    // Nothing left to fetch; the caller checks the hash, so a bad prefix still cannot be installed.
    await storage(() => staging.sync(file), `flush ${where} to disk`);
    await storage(() => staging.removeRecord(file), `remove the resume record of ${where}`);
    return { size: prefix, sha256: hash.digest(), resumedFrom: prefix, bytesFetched: 0 };
  }

  let restarted = false;
  for (;;) {
    const range = prefix > 0 ? `bytes=${prefix}-` : undefined;
    const sent = await sendRequest({ transport, url, headers, ...(range ? { range } : {}), ...(range && validator ? { validator } : {}), signal, limits: limitsUnderCap(limits, options.budget, 1), timers, href: options.url });
    ({ url, headers } = sent);
    const { response, guard, attempt, stop } = sent;
    const { status } = response;

    if (status === 416 || (status === 206 && contentRange(response.headers)?.start !== prefix)) {
      stop();
      if (prefix === 0 || restarted) throw brokenRanges(url, status, restarted, prefix);
      // The staged prefix does not fit what the server holds now: start over, once.
      restarted = true;
      await storage(() => staging.remove(file), `remove ${where}`);
      prefix = 0;
      validator = undefined;
      hash = await staging.createHash();
      continue;
    }

    if (status === 200 && prefix > 0) {
      // The server ignored Range, or the file changed (If-Range failed): the body is the whole file.
      await storage(() => staging.remove(file), `remove ${where}`).catch((error: unknown) => {
        stop();
        throw error;
      });
      prefix = 0;
      hash = await staging.createHash();
    }
    // Checked before the first body byte: a partial file of the wrong size is worth nothing.
    const total = declaredTotal(response.headers, status);
    if (total !== undefined && total !== expectedSize) {
      stop();
      await staging.remove(file).catch(() => undefined);
      throw sizeMismatch(url, `the server says it holds ${total} bytes`, expectedSize);
    }
    try {
      await storage(() => staging.writeRecord(file, { expectedSize, ...recordValidator(response.headers) }), `write the resume record of ${where}`);
    } catch (error) {
      stop();
      throw error;
    }
    onStart?.(prefix);
    const received = await receive(response, { staging, file, where, prefix, expectedSize, hash, guard, attempt, url, signal, timers, ...(onBytes ? { onBytes } : {}), ...(options.budget ? { budget: options.budget } : {}) }).finally(stop);
    const size = prefix + received;
    if (size < expectedSize) throw endedEarly(url, size, expectedSize);
    await storage(() => staging.removeRecord(file), `remove the resume record of ${where}`);
    return { size, sha256: hash.digest(), resumedFrom: prefix, bytesFetched: received };
  }
}

interface ReceiveContext {
  staging: StagingArea;
  file: StagedFile;
  where: string;
  prefix: number;
  expectedSize: number;
  hash: Sha256;
  guard: TransferGuard;
  attempt: Attempt;
  url: URL;
  signal: AbortSignal | undefined;
  timers: Timers;
  onBytes?: (delta: number) => void;
  budget?: RateBudget;
}

/**
 * Streams the body into the staged file, hashing on the way; resolves with the body bytes, all
 * written (and synced when the file is complete). Whatever ends the transfer early, what arrived is
 * written first, so the next attempt resumes it; a size mismatch deletes it instead.
 */
async function receive(response: TransportResponse, context: ReceiveContext): Promise<number> {
  const { staging, file, where, prefix, expectedSize, hash, guard, attempt, url, onBytes } = context;
  const limit = expectedSize - prefix;
  let received = 0;
  let writerFull = false;
  const pacer = new Pacer(context.budget, context.timers, () => {
    if (!writerFull && !attempt.failure) response.resume();
  }, () => guard.arrived(0));
  const writer: StagedWriter = await storage(
    () =>
      staging.open(file, {
        position: prefix,
        hash,
        onDrain: () => {
          writerFull = false;
          if (!attempt.failure && !pacer.paused) response.resume();
        },
        onError: (error) => attempt.fail(storageError(error, `write ${where}`)),
      }),
    `open ${where}`,
  );
  // From here on the guards watch the body (not the local writes that got it ready).
  guard.startBody();
  let bodyError: unknown;
  try {
    await response.receive({
      readBytes: () => pacer.readBytes(),
      write(bytes) {
        if (attempt.failure) return false;
        guard.arrived(bytes.length);
        if (received + bytes.length > limit) {
          attempt.fail(sizeMismatch(url, `it sent more than ${expectedSize} bytes`, expectedSize));
          return false;
        }
        received += bytes.length;
        hash.update(bytes);
        onBytes?.(bytes.length);
        writerFull = !writer.write(bytes);
        return pacer.take(bytes.length) && !writerFull;
      },
    });
  } catch (error) {
    bodyError = error;
  }
  guard.dispose();
  pacer.dispose();
  const failure = attempt.failure ?? (bodyError === undefined ? undefined : context.signal?.aborted ? cancelled() : networkError(bodyError, url, 'body'));
  const complete = failure === undefined && prefix + received === expectedSize;
  try {
    await writer.finish({ sync: complete });
  } catch (error) {
    throw failure?.code === 'SIZE_MISMATCH' ? failure : storageError(error, `write ${where}`);
  }
  if (failure?.code === 'SIZE_MISMATCH') await staging.remove(file).catch(() => undefined);
  if (failure) throw failure;
  return received;
}
