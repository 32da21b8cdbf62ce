/**
 * Bulk transfer of one model file on Node: a GET streamed straight into a file, hashed on the way (one
 * pass), resumed with Range / If-Range, redirects followed by hand. Web streams (fetch, ky) cost a lot
 * on Node 20, so the body goes over a socket that reads into one reused buffer (directHttpExchange.ts),
 * or over node:http for any response that transport declines (nodeHttpExchange.ts). The bytes are
 * copied into a few reused 1 MiB slots, each written with one positional write, and reading pauses
 * while they all wait for the disk (slotWriter.ts), so memory stays bounded whatever the file size.
 *
 * One call is one attempt: the statechart owns retries and back-off, and this module leaves the partial
 * file in a state the next attempt resumes.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { lstat, open, readFile, rm, writeFile } from 'node:fs/promises';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import tls from 'node:tls';
import { UpdateError } from '../errors.js';
import { parseRetryAfter } from '../retryAfter.js';
import { openDirectExchange } from './directHttpExchange.js';
import { storageError } from '../storageError.js';
import { cancelled, sizeMismatch, type BodySink, type Exchange } from './exchange.js';
import { openNodeHttpExchange } from './nodeHttpExchange.js';
import { NO_FOLLOW, WRITE_NO_FOLLOW } from './noSymlinks.js';
import type { ProxySetting } from './proxy.js';

export interface DownloadFileOptions {
  /** Absolute http: or https: URL. */
  url: string;
  /** Staging file; may already hold a prefix from an earlier attempt, which is resumed. */
  partPath: string;
  /** Size from the manifest: the download fails with SIZE_MISMATCH at the first byte beyond it. */
  expectedSize: number;
  /** Abort rejects with UpdateError('CANCELLED') and keeps the partial file for a later resume. */
  signal?: AbortSignal;
  /** Called with the bytes just written to partPath (about once per MiB); the caller computes progress. */
  onBytes?: (delta: number) => void;
  /**
   * Called once the server has agreed where the body starts, before the first onBytes: `offset` is the
   * number of bytes already in partPath (0 when starting over), so progress is offset + sum of deltas.
   */
  onStart?: (offset: number) => void;
  /** No byte for this long fails with DOWNLOAD_STALLED. Default 30 000. */
  stallTimeoutMs?: number;
  headers?: Record<string, string>;
  /** Extra CA certificates (PEM) to trust for https, on top of Node's roots: a private model server's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** A proxy URL instead of HTTPS_PROXY / HTTP_PROXY / NO_PROXY, or false to ignore them (proxy.ts). Each redirect hop decides for its own URL. */
  proxy?: ProxySetting;
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

const KIB = 1024;
const MIB = 1024 * KIB;
const MAX_REDIRECTS = 5;
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Dropped when a redirect leaves the origin they were meant for. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
/** Headers this module writes itself: framing and connection handling are not the caller's to change. */
const RESERVED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'accept-encoding', 'range', 'if-range', 'te', 'upgrade']);

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
 *   partPath: '/var/lib/app/models/staging/1.2.0/model.bin',
 *   expectedSize: 734_003_200,
 *   onStart: (offset) => (done = offset),
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
  let headers = normalizeHeaders(options.headers);
  const ca = options.ca === undefined ? undefined : [...tls.rootCertificates, ...[options.ca].flat()];
  throwIfAborted(signal);

  const metaPath = `${partPath}.meta`;
  const meta = await readMeta(metaPath);
  let prefix = await fileSize(partPath);
  // A prefix of a different size of file cannot belong to this one, whatever the server says.
  if (prefix > expectedSize || (prefix > 0 && meta !== undefined && meta.expectedSize !== expectedSize)) {
    await storage(() => rm(partPath, { force: true }), `remove ${partPath}`);
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

  let redirects = 0;
  let restarted = false;
  for (;;) {
    const requestHeaders = { ...headers };
    if (url.username !== '' && requestHeaders.authorization === undefined) {
      const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      requestHeaders.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
    }
    if (prefix > 0) {
      requestHeaders.range = `bytes=${prefix}-`;
      const validator = meta?.etag ?? meta?.lastModified;
      if (validator !== undefined) requestHeaders['if-range'] = validator;
    }
    // The direct transport reads plain responses fast; whatever it declines, node:http answers instead.
    const exchangeOptions = { signal, stallTimeoutMs, ca, proxy: options.proxy };
    const exchange = (await openDirectExchange(url, requestHeaders, exchangeOptions)) ?? (await openNodeHttpExchange(url, requestHeaders, exchangeOptions));
    let received: number;
    try {
      const { status } = exchange;

      if (REDIRECT_STATUSES.has(status)) {
        exchange.close();
        const location = exchange.headers.location;
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

      if (status === 416 || (status === 206 && contentRangeStart(exchange.headers) !== prefix)) {
        exchange.close();
        if (prefix === 0 || restarted) {
          const when = restarted ? 'even after starting over' : `to a request for bytes ${prefix}-`;
          throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${when}; the server's range support is broken, tell the publisher.`);
        }
        restarted = true;
        await storage(() => rm(partPath, { force: true }), `remove ${partPath}`);
        prefix = 0;
        hash = createHash('sha256');
        continue;
      }

      if (status === 429 || status >= 500) {
        exchange.close();
        const retryAfterMs = parseRetryAfter(exchange.headers['retry-after']);
        const wait = retryAfterMs === undefined ? '' : ` and asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
        throw new UpdateError('SERVICE_UNAVAILABLE', `${url.href} answered ${status}${wait}; try again later.`, retryAfterMs === undefined ? {} : { retryAfterMs });
      }
      if (status !== 200 && status !== 206) {
        exchange.close();
        const hint = status >= 400 ? 'check the URL in the manifest and the access rights' : 'the server does not serve plain files';
        throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${exchange.statusText}`.trimEnd() + `; ${hint}.`);
      }

      if (status === 200 && prefix > 0) {
        // The server ignored Range or the file changed (If-Range failed): the body is the whole file.
        prefix = 0;
        hash = createHash('sha256');
      }
      const declared = declaredTotal(exchange.headers, status);
      if (declared !== undefined && declared !== expectedSize) {
        exchange.close();
        await discardPartial(partPath, metaPath);
        throw sizeMismatch(url, `the server says it holds ${declared} bytes`, expectedSize);
      }

      await writeMeta(metaPath, exchange.headers, expectedSize);
      onStart?.(prefix);
      received = await receiveInto(exchange, partPath, { position: prefix, hash, limit: expectedSize - prefix, expectedSize, onBytes });
    } catch (error) {
      // Whatever failed before or while reading the body, the socket must not outlive this attempt.
      exchange.close();
      if (error instanceof UpdateError && error.code === 'SIZE_MISMATCH') await discardPartial(partPath, metaPath);
      throw error;
    }
    const size = prefix + received;
    if (size < expectedSize) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} ended after ${size} of ${expectedSize} bytes; the partial file is kept and the next attempt resumes it.`);
    }
    await removeQuietly(metaPath);
    return { size, sha256: hash.digest('hex'), resumedFrom: prefix, bytesFetched: received };
  }
}

/** Opens partPath at the resume position, streams the body into it and fsyncs it once complete. */
async function receiveInto(exchange: Exchange, partPath: string, sink: Omit<BodySink, 'file'>): Promise<number> {
  // Never through a symbolic link put in place of the staging file, even after the store's checks.
  const flags = sink.position > 0 ? fsConstants.O_RDWR | NO_FOLLOW : WRITE_NO_FOLLOW;
  const file = await storage(() => open(partPath, flags), `open ${partPath}`);
  try {
    // Positional writes below; a stale tail past the prefix must not survive.
    if (sink.position > 0) await storage(() => file.truncate(sink.position), `truncate ${partPath}`);
    const received = await exchange.receive({ ...sink, file });
    if (sink.position + received === sink.expectedSize) await storage(() => file.sync(), `flush ${partPath} to disk`);
    return received;
  } finally {
    await file.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------
// Files, headers and errors.

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
    const handle = await open(path, fsConstants.O_RDWR | NO_FOLLOW);
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

async function writeMeta(path: string, headers: Record<string, string>, expectedSize: number): Promise<void> {
  const meta: PartMeta = { expectedSize };
  // If-Range needs a strong validator; a weak ETag would make every resume start over.
  if (headers.etag !== undefined && !headers.etag.startsWith('W/')) meta.etag = headers.etag;
  if (headers['last-modified'] !== undefined) meta.lastModified = headers['last-modified'];
  await storage(() => writeFile(path, JSON.stringify(meta), { flag: WRITE_NO_FOLLOW }), `write ${path}`);
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
    // lstat: a symbolic link in place of the staging file is refused, not measured through.
    const stats = await lstat(path);
    if (!stats.isFile()) {
      throw new UpdateError('STORAGE_FAILED', `${path} is not a regular file (a symbolic link or a folder); remove it or choose another staging path.`);
    }
    return stats.size;
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw storageError(error, `read ${path}`);
  }
}

function contentRangeStart(headers: Record<string, string>): number | undefined {
  const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(headers['content-range'] ?? '');
  return match === null ? undefined : Number(match[1]);
}

/** The size the server claims for the whole file, when it says so. */
function declaredTotal(headers: Record<string, string>, status: number): number | undefined {
  if (status === 206) {
    const match = /\/(\d+)$/.exec(headers['content-range'] ?? '');
    return match === null ? undefined : Number(match[1]);
  }
  const length = headers['content-length'];
  return length === undefined || headers['transfer-encoding'] !== undefined || !/^\d+$/.test(length) ? undefined : Number(length);
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
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (error) {
      throw new UpdateError('INVALID_ARGUMENT', `Header ${JSON.stringify(name)} is not a valid HTTP header (${(error as Error).message}).`, { cause: error });
    }
    const key = name.toLowerCase();
    if (!RESERVED_HEADERS.has(key)) out[key] = value;
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

async function storage<T>(action: () => Promise<T>, what: string): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw storageError(error, what);
  }
}
