/**
 * One GET of a model file as every download sends it (downloadFile.ts whole, fetchSpans.ts by ranges):
 * Basic auth from the URL, the range and its validator, redirects (credentials dropped when they leave
 * the origin), the head deadline, and the statuses no caller can use (429, 5xx, anything but 200, 206
 * and 416) turned into their errors. Plus the response-header readings both callers share.
 */
import { UpdateError } from '../errors.js';
import { parseRetryAfter } from '../retryAfter.js';
import { storageError } from '../storageError.js';
import type { Transport, TransportResponse } from '../ports/transport.js';
import { cancelled, networkError, serviceUnavailable, unexpectedStatus } from './downloadErrors.js';
import { basicAuth, parseUrl, withoutCredentials } from './requestHeaders.js';
import { TransferGuard, type DownloadLimits, type GuardLimits, type Timers } from './transferGuard.js';

const MAX_REDIRECTS = 5;
/** The one header that makes a range conditional on the validator; only the download sends it. */
export const RANGE_VALIDATOR_HEADER = 'if-range';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface SendRequestOptions {
  transport: Transport;
  url: URL;
  /** The caller's normalized headers (no range headers: those come from `range` / `validator`). */
  headers: Record<string, string>;
  /** `bytes=a-` or `bytes=a-b`. */
  range?: string;
  /** Sent as If-Range with the range. */
  validator?: string;
  signal: AbortSignal | undefined;
  limits: GuardLimits;
  timers: Timers;
  /** The URL as the manifest names it, for the redirect error. */
  href: string;
}

export interface SentRequest {
  response: TransportResponse;
  /** Where the response came from (after redirects). */
  url: URL;
  /** The headers to send there (credentials gone when a redirect left the origin). */
  headers: Record<string, string>;
  guard: TransferGuard;
  attempt: Attempt;
  /** Disposes of the guard and the attempt and drops the connection. */
  stop(): void;
}

/**
 * Sends the GET, follows redirects, and resolves with a 200, 206 or 416 whose head is in; the guard
 * is armed for the head only (the caller starts the body's).
 * @example
 * const sent = await sendRequest({ transport, url, headers: {}, range: 'bytes=0-1023', signal, limits, timers, href })
 * if (sent.response.status === 206) ...
 */
export async function sendRequest(options: SendRequestOptions): Promise<SentRequest> {
  const { transport, signal, limits, timers } = options;
  let { url, headers } = options;
  for (let redirects = 0; ; ) {
    const requestHeaders = { ...headers };
    const auth = basicAuth(url);
    if (auth !== undefined && requestHeaders.authorization === undefined) requestHeaders.authorization = auth;
    if (options.range !== undefined) {
      requestHeaders.range = options.range;
      if (options.validator !== undefined) requestHeaders[RANGE_VALIDATOR_HEADER] = options.validator;
    }
    const attempt = new Attempt(signal);
    const guard = new TransferGuard(url, limits, timers, (error) => attempt.fail(error));
    guard.startHead();
    let response: TransportResponse;
    try {
      response = await transport.get({ url, headers: requestHeaders, signal: attempt.signal });
    } catch (error) {
      guard.dispose();
      attempt.dispose();
      throw attempt.failure ?? (signal?.aborted ? cancelled() : networkError(error, url, 'head'));
    }
    guard.headArrived();
    const { status } = response;
    const stop = () => {
      guard.dispose();
      attempt.dispose();
      response.close();
    };
    if (REDIRECT_STATUSES.has(status)) {
      stop();
      const location = response.headers.location;
      if (location === undefined) {
        throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} without a Location header; the server is misconfigured.`);
      }
      if (++redirects > MAX_REDIRECTS) {
        throw new UpdateError('DOWNLOAD_FAILED', `${options.href} redirected more than ${MAX_REDIRECTS} times; check the URL in the manifest.`);
      }
      const next = parseUrl(location, url);
      if (next.origin !== url.origin) headers = withoutCredentials(headers);
      url = next;
      continue;
    }
    if (status === 429 || status >= 500) {
      stop();
      throw serviceUnavailable(url, status, parseRetryAfter(response.headers['retry-after'], timers.now()));
    }
    if (status !== 200 && status !== 206 && status !== 416) {
      stop();
      throw unexpectedStatus(url, status, response.statusText);
    }
    return { response, url, headers, guard, attempt, stop };
  }
}

/** One request's life: the first failure wins and aborts it; the caller's abort aborts it too. */
export class Attempt {
  readonly #controller = new AbortController();
  #failure: UpdateError | undefined;
  readonly #forward = (): void => this.#controller.abort(cancelled());

  constructor(private readonly parent: AbortSignal | undefined) {
    parent?.addEventListener('abort', this.#forward, { once: true });
    if (parent?.aborted) this.#forward();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get failure(): UpdateError | undefined {
    return this.#failure;
  }

  fail(error: UpdateError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#controller.abort(error);
  }

  dispose(): void {
    this.parent?.removeEventListener('abort', this.#forward);
  }
}

/** A validator If-Range may carry: a weak ETag never matches there, so every resume would start over. */
export function strong(validator: string | undefined): string | undefined {
  return validator === undefined || validator.startsWith('W/') ? undefined : validator;
}

/** The validator a resume record keeps: a strong ETag, else Last-Modified. */
export function recordValidator(headers: Record<string, string>): { validator?: string } {
  const validator = strong(headers.etag) ?? headers['last-modified'];
  return validator === undefined ? {} : { validator };
}

/** A 206's Content-Range: first and last byte, and the total when the server says it. */
export function contentRange(headers: Record<string, string>): { start: number; last: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers['content-range'] ?? '');
  if (match === null) return undefined;
  return { start: Number(match[1]), last: Number(match[2]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

/** The size the server claims for the whole file, when it says so. */
export function declaredTotal(headers: Record<string, string>, status: number): number | undefined {
  if (status === 206) return contentRange(headers)?.total;
  const length = headers['content-length'];
  return length === undefined || headers['transfer-encoding'] !== undefined || !/^\d+$/.test(length) ? undefined : Number(length);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}

/** Runs a storage action; its failure becomes STORAGE_FAILED (or INSUFFICIENT_DISK_SPACE) naming `what`. */
export async function storage<T>(action: () => Promise<T>, what: string): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw storageError(error, what);
  }
}
