/**
 * Bulk transfer of one model file on Node: node:http(s) straight into a file, hashing on the way.
 *
 * Fetch/ky web streams cost several times more CPU per byte on Node 20 than node:http plus fs streams, so
 * big files go through here while ky keeps the small manifest. One call is one attempt: the statechart
 * owns retries and back-off, and this module leaves the partial file in a state the next attempt resumes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { UpdateError } from '../errors.js';

export interface DownloadFileOptions {
  /** Absolute http: or https: URL. */
  url: string;
  /** Staging file; may already hold a prefix from an earlier attempt, which is resumed. */
  partPath: string;
  /** Size from the manifest: the download fails with SIZE_MISMATCH at the first byte beyond it. */
  expectedSize: number;
  /** Abort rejects with UpdateError('CANCELLED') and keeps the partial file for a later resume. */
  signal?: AbortSignal;
  /** Called with the bytes just received and handed to the file; the caller computes progress. */
  onBytes?: (delta: number) => void;
  /**
   * Called once the server has agreed where the body starts, before the first onBytes: `offset` is the
   * number of bytes already in partPath (0 when starting over), so progress is offset + sum of deltas.
   * May be called again with 0 if the server forces a restart.
   */
  onStart?: (offset: number) => void;
  /** No byte for this long fails with DOWNLOAD_STALLED. Default 30 000. */
  stallTimeoutMs?: number;
  headers?: Record<string, string>;
}

export interface DownloadFileResult {
  /** Bytes in partPath at the end (equals expectedSize). */
  size: number;
  /** Lowercase hex SHA-256 of the whole file, the kept prefix included. */
  sha256: string;
  /** Bytes kept from an earlier attempt (0 when started over). */
  resumedFrom: number;
  /** Bytes received over the network in this call. */
  bytesFetched: number;
}

const MIB = 1024 * 1024;
/**
 * Big write batches: WriteStream's _writev turns the buffered socket chunks (64 KiB each) into one
 * syscall, and the cap still bounds memory to about this much per download.
 */
const WRITE_HIGH_WATER_MARK = MIB;
const MAX_REDIRECTS = 5;
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Dropped when a redirect leaves the origin they were meant for. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
/** TLS failures that will not fix themselves by retrying. */
const TLS_CONFIG_ERRORS = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/;

/** What the first attempt learned about the resource, so a later attempt resumes only the same bytes. */
interface PartMeta {
  expectedSize: number;
  etag?: string;
  lastModified?: string;
}

/**
 * Downloads `url` into `partPath`, resuming a prefix left by an earlier attempt, and returns the SHA-256
 * of the whole file. The file is fsynced before the promise resolves. Never retries: every failure is an
 * {@link UpdateError} whose code tells the caller whether a retry can help.
 *
 * @example
 * const { sha256 } = await downloadFile({
 *   url: 'https://models.example.com/1.2.0/model.bin',
 *   partPath: '/var/lib/app/models/.staging/model.bin.part',
 *   expectedSize: 734_003_200,
 *   onBytes: (n) => (done += n),
 * });
 * if (sha256 !== file.sha256) throw new Error('corrupt download');
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const { partPath, expectedSize, signal, onBytes, onStart } = options;
  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  let url = parseUrl(options.url);
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UpdateError('INVALID_ARGUMENT', `expectedSize must be a whole number of bytes, got ${expectedSize}.`);
  }
  if (!(stallTimeoutMs > 0)) {
    throw new UpdateError('INVALID_ARGUMENT', `stallTimeoutMs must be a positive number, got ${stallTimeoutMs}.`);
  }
  throwIfAborted(signal);

  const metaPath = `${partPath}.meta`;
  const meta = await readMeta(metaPath);
  let prefix = await fileSize(partPath);
  // A prefix of a different size of file cannot belong to this one, whatever the server says.
  if (prefix > expectedSize || (prefix > 0 && meta !== undefined && meta.expectedSize !== expectedSize)) {
    await storage(() => truncate(partPath, 0), `truncate ${partPath}`);
    prefix = 0;
  }

  let hash = createHash('sha256');
  if (prefix > 0) prefix = await hashPrefix(partPath, prefix, hash, signal);
  if (prefix === expectedSize && prefix > 0) {
    // Nothing left to fetch; the caller checks the hash, so a bad prefix still cannot be installed.
    await fsyncFile(partPath);
    await removeQuietly(metaPath);
    return { size: prefix, sha256: hash.digest('hex'), resumedFrom: prefix, bytesFetched: 0 };
  }

  let headers = normalizeHeaders(options.headers);
  let redirects = 0;
  let restarted = false;

  for (;;) {
    const requestHeaders: OutgoingHttpHeaders = { ...headers, 'accept-encoding': 'identity' };
    if (prefix > 0) {
      requestHeaders.range = `bytes=${prefix}-`;
      const validator = meta?.etag ?? meta?.lastModified;
      if (validator !== undefined) requestHeaders['if-range'] = validator;
    }
    const { req, res } = await sendRequest(url, requestHeaders, signal, stallTimeoutMs);
    let received: number;
    try {
      const status = res.statusCode ?? 0;

      if (REDIRECT_STATUSES.has(status)) {
        const location = res.headers.location;
        discard(req, res);
        if (location === undefined) {
          throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} without a Location header; the server is misconfigured.`);
        }
        if (++redirects > MAX_REDIRECTS) {
          throw new UpdateError('DOWNLOAD_FAILED', `${options.url} redirected more than ${MAX_REDIRECTS} times; check the URL in the manifest.`);
        }
        const next = parseUrl(location, url);
        if (next.origin !== url.origin) headers = withoutCredentials(headers);
        url = next;
        continue;
      }

      if (status === 416 || (status === 206 && contentRangeStart(res) !== prefix)) {
        discard(req, res);
        if (prefix === 0 || restarted) {
          const when = restarted ? 'even after starting over' : `to a request for bytes ${prefix}-`;
          throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${when}; the server's range support is broken, tell the publisher.`);
        }
        restarted = true;
        await storage(() => truncate(partPath, 0), `truncate ${partPath}`);
        prefix = 0;
        hash = createHash('sha256');
        continue;
      }

      if (status === 429 || status >= 500) {
        const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
        discard(req, res);
        const wait = retryAfterMs === undefined ? '' : ` and asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
        throw new UpdateError('SERVICE_UNAVAILABLE', `${url.href} answered ${status}${wait}; try again later.`, retryAfterMs === undefined ? {} : { retryAfterMs });
      }
      if (status !== 200 && status !== 206) {
        discard(req, res);
        const hint = status >= 400 ? 'check the URL in the manifest and the access rights' : 'the server does not serve plain files';
        throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${res.statusMessage ?? ''}`.trimEnd() + `; ${hint}.`);
      }

      if (status === 200 && prefix > 0) {
        // The server ignored Range or the file changed (If-Range failed): the body is the whole file.
        prefix = 0;
        hash = createHash('sha256');
      }
      const declared = declaredTotal(res, status);
      if (declared !== undefined && declared !== expectedSize) {
        discard(req, res);
        await discardPartial(partPath, metaPath);
        throw sizeMismatch(url, `the server says it holds ${declared} bytes`, expectedSize);
      }

      await writeMeta(metaPath, res, expectedSize);
      onStart?.(prefix);
      const ws = createWriteStream(partPath, { flags: prefix > 0 ? 'a' : 'w', highWaterMark: WRITE_HIGH_WATER_MARK });
      received = await receiveBody({ req, res, ws, hash, url, limit: expectedSize - prefix, expectedSize, signal, stallTimeoutMs, onBytes, partPath, metaPath });
    } catch (error) {
      // Whatever failed before or while reading the body, the socket must not outlive this attempt.
      discard(req, res);
      throw error;
    }
    const size = prefix + received;
    if (size < expectedSize) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} ended after ${size} of ${expectedSize} bytes; the partial file is kept and the next attempt resumes it.`);
    }
    await fsyncFile(partPath);
    await removeQuietly(metaPath);
    return { size, sha256: hash.digest('hex'), resumedFrom: prefix, bytesFetched: received };
  }
}

function sendRequest(
  url: URL,
  headers: OutgoingHttpHeaders,
  signal: AbortSignal | undefined,
  stallTimeoutMs: number,
): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    // A fresh connection per attempt: a pooled keep-alive socket the server already closed would turn
    // into a spurious NETWORK_UNAVAILABLE, and one big body gains nothing from reuse.
    const req = client.request(url, { method: 'GET', headers, agent: false });
    const timer = setTimeout(() => req.destroy(stalled(url, stallTimeoutMs)), stallTimeoutMs);
    const onAbort = (): void => void req.destroy(cancelled());
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    // Stays attached for the request's life: later socket errors surface on the response instead.
    req.on('error', (error) => {
      cleanup();
      reject(networkError(error, url));
    });
    req.on('response', (res) => {
      cleanup();
      // The body is read after an await (writing the .meta); an error in that gap must not crash the
      // process. receiveBody sees it through res.errored / 'close'.
      res.on('error', () => {});
      resolve({ req, res });
    });
    req.end();
  });
}

interface ReceiveOptions {
  req: ClientRequest;
  res: IncomingMessage;
  ws: WriteStream;
  hash: Hash;
  url: URL;
  /** Bytes the body may still bring before the file is larger than the manifest says. */
  limit: number;
  expectedSize: number;
  signal: AbortSignal | undefined;
  stallTimeoutMs: number;
  onBytes: ((delta: number) => void) | undefined;
  partPath: string;
  metaPath: string;
}

/**
 * Pumps the body into the file, hashing each chunk in the data handler (measured faster than a hashing
 * Transform in a pipeline), with backpressure from the file. Resolves with the bytes received once the
 * file is closed; on a network failure, stall or abort it first writes what already arrived so the next
 * attempt can resume it.
 */
function receiveBody(o: ReceiveOptions): Promise<number> {
  const { req, res, ws, hash, url, signal } = o;
  return new Promise<number>((resolve, reject) => {
    let received = 0;
    // 'ending': the body is complete and the file is being flushed; only then does a write error matter.
    let state: 'receiving' | 'ending' | 'failed' = 'receiving';
    const timer = setTimeout(() => fail(stalled(url, o.stallTimeoutMs), 'keep'), o.stallTimeoutMs);

    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('close', onClose);
      ws.off('drain', onDrain);
    };
    const afterClose = (done: () => void): void => {
      if (ws.closed) done();
      else ws.once('close', done);
    };

    function fail(error: unknown, partial: 'keep' | 'delete'): void {
      if (state !== 'receiving') return;
      state = 'failed';
      cleanup();
      res.destroy();
      req.destroy();
      if (partial === 'keep' && !ws.destroyed) {
        // end() rather than destroy(): chunks already accepted still reach the file, so they count.
        ws.end();
        afterClose(() => reject(error));
        return;
      }
      ws.destroy();
      afterClose(() => {
        if (partial === 'delete') discardPartial(o.partPath, o.metaPath).then(() => reject(error), reject);
        else reject(error);
      });
    }

    function onData(chunk: Buffer): void {
      if (received + chunk.length > o.limit) {
        fail(sizeMismatch(url, 'the server sent more bytes than that', o.expectedSize), 'delete');
        return;
      }
      received += chunk.length;
      hash.update(chunk);
      if (!ws.write(chunk)) res.pause();
      timer.refresh();
      if (o.onBytes !== undefined) {
        try {
          o.onBytes(chunk.length);
        } catch (error) {
          fail(error, 'keep');
        }
      }
    }
    function onDrain(): void {
      // Waiting on a slow disk is not a stalled server.
      timer.refresh();
      res.resume();
    }
    function onEnd(): void {
      if (!res.complete) return onClose();
      if (state !== 'receiving') return;
      state = 'ending';
      cleanup();
      ws.end();
      afterClose(() => (ws.errored ? undefined : resolve(received)));
    }
    function onClose(): void {
      fail(networkError(res.errored ?? new Error('the body ended early'), url), 'keep');
    }
    function onAbort(): void {
      fail(cancelled(), 'keep');
    }

    ws.on('error', (error) => {
      if (state === 'receiving') fail(storageError(error, `write ${o.partPath}`), 'keep');
      // The flush after a clean end failed: report it instead of a silently short file.
      else if (state === 'ending') afterClose(() => reject(storageError(error, `write ${o.partPath}`)));
      // After a failure, errors from the torn-down stream are consequences, not news.
    });
    if (signal?.aborted) return onAbort();
    if (res.errored || res.destroyed) return onClose();
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.on('drain', onDrain);
    res.on('data', onData);
    res.on('end', onEnd);
    res.on('close', onClose);
  });
}

async function hashPrefix(path: string, length: number, hash: Hash, signal: AbortSignal | undefined): Promise<number> {
  let read = 0;
  try {
    for await (const chunk of createReadStream(path, { start: 0, end: length - 1, highWaterMark: MIB })) {
      throwIfAborted(signal);
      hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    throw storageError(error, `read ${path}`);
  }
  return read;
}

async function fsyncFile(path: string): Promise<void> {
  await storage(async () => {
    // r+ because Windows only flushes handles opened for writing.
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }, `flush ${path} to disk`);
}

async function readMeta(path: string): Promise<PartMeta | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<PartMeta>;
    if (typeof value.expectedSize !== 'number') return undefined;
    return {
      expectedSize: value.expectedSize,
      ...(typeof value.etag === 'string' ? { etag: value.etag } : {}),
      ...(typeof value.lastModified === 'string' ? { lastModified: value.lastModified } : {}),
    };
  } catch {
    // A torn sidecar only costs the validator: the resume goes on without If-Range.
    return undefined;
  }
}

async function writeMeta(path: string, res: IncomingMessage, expectedSize: number): Promise<void> {
  const etag = res.headers.etag;
  const lastModified = res.headers['last-modified'];
  const meta: PartMeta = { expectedSize };
  // If-Range needs a strong validator; a weak ETag would make every resume start over.
  if (etag !== undefined && !etag.startsWith('W/')) meta.etag = etag;
  if (lastModified !== undefined) meta.lastModified = lastModified;
  await storage(() => writeFile(path, JSON.stringify(meta)), `write ${path}`);
}

async function discardPartial(partPath: string, metaPath: string): Promise<void> {
  await removeQuietly(partPath);
  await removeQuietly(metaPath);
}

async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

async function fileSize(path: string): Promise<number> {
  try {
    const stats = await stat(path);
    if (!stats.isFile()) {
      throw new UpdateError('STORAGE_FAILED', `${path} is not a regular file; remove it or choose another staging path.`);
    }
    return stats.size;
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw storageError(error, `read ${path}`);
  }
}

function discard(req: ClientRequest, res: IncomingMessage): void {
  res.destroy();
  req.destroy();
}

function contentRangeStart(res: IncomingMessage): number | undefined {
  const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(res.headers['content-range'] ?? '');
  return match === null ? undefined : Number(match[1]);
}

/** The size the server claims for the whole file, when it says so. */
function declaredTotal(res: IncomingMessage, status: number): number | undefined {
  if (status === 206) {
    const match = /\/(\d+)$/.exec(res.headers['content-range'] ?? '');
    return match === null ? undefined : Number(match[1]);
  }
  const length = res.headers['content-length'];
  return length === undefined || !/^\d+$/.test(length) ? undefined : Number(length);
}

/**
 * Retry-After as milliseconds from now: delta-seconds or an HTTP-date; undefined when absent or unparsable.
 *
 * @example
 * parseRetryAfter('7') // 7000
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseUrl(value: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `"${value}" is not an absolute URL; pass an http: or https: URL.` : `${base.href} redirected to "${value}", which is not a URL.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `${url.href} is not an http: or https: URL.` : `${base.href} redirected to ${url.href}, which is not http: or https:.`,
    );
  }
  return url;
}

function normalizeHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const key = name.toLowerCase();
    // This module owns the byte range it asks for.
    if (key !== 'range' && key !== 'if-range') out[key] = value;
  }
  return out;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  for (const name of CREDENTIAL_HEADERS) delete out[name];
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}

function cancelled(): UpdateError {
  return new UpdateError('CANCELLED', 'The download was cancelled; the partial file is kept and the next attempt resumes it.');
}

function stalled(url: URL, ms: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} sent nothing for ${ms} ms; the partial file is kept and the next attempt resumes it.`);
}

function sizeMismatch(url: URL, what: string, expectedSize: number): UpdateError {
  return new UpdateError(
    'SIZE_MISMATCH',
    `The manifest says ${url.href} is ${expectedSize} bytes but ${what}; the partial file was deleted. The manifest or the server is out of date: check for updates again, or tell the publisher.`,
  );
}

function networkError(error: unknown, url: URL): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const reason = error instanceof Error ? error.message : String(error);
  if (TLS_CONFIG_ERRORS.test(code)) {
    return new UpdateError('DOWNLOAD_FAILED', `TLS with ${url.host} failed (${reason}); check the server's certificate or the URL.`, { cause: error });
  }
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not download from ${url.host} (${reason}); check the connection. Any partial file is kept and the next attempt resumes it.`, { cause: error });
}

function storageError(error: unknown, what: string): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new UpdateError('INSUFFICIENT_DISK_SPACE', `Could not ${what}: the disk is full. Free some space and try again.`, { cause: error });
  }
  return new UpdateError('STORAGE_FAILED', `Could not ${what} (${reason}); check that the folder exists and is writable.`, { cause: error });
}

async function storage<T>(action: () => Promise<T>, what: string): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw storageError(error, what);
  }
}
