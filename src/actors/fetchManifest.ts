/**
 * Asks the update service for its manifest and decides whether to trust it: If-None-Match so an
 * unchanged manifest costs one 304, mirrors tried in order, redirects followed by hand so credentials
 * never reach another origin, a size cap, strict JSON, then signatures, rotation, rollback and expiry.
 */
import ky, { HTTPError, TimeoutError } from 'ky';
import { fromPromise } from 'xstate';
import type { FetchManifestInput, FetchManifestOutput } from '../../machines/types.js';
import { isTransientCode, UpdateError } from '../errors.js';
import { parseRetryAfter } from '../retryAfter.js';
import { acceptManifest, expired } from '../trust/acceptManifest.js';
import { parseStrictJson } from '../trust/strictJson.js';
import type { TrustStore } from '../trust/trustStore.js';

export interface FetchManifestOptions {
  /** The manifest's URL, or several mirrors tried in order; a mirror that fails or serves bad data is skipped. */
  manifestUrl: string | readonly string[];
  /** Largest manifest accepted, in bytes. */
  maxBytes: number;
  /** Quick retries inside one check (ky's), before the chart's own back-off takes over. */
  retries: number;
  timeoutMs: number;
  /** Longest Retry-After ky waits in place; a longer one ends the check and defers it. */
  maxInPlaceRetryAfterMs: number;
  /** Accept manifests without signatures (only when no trusted keys are configured). */
  allowUnsigned?: boolean;
  /** How far past its `expires` a manifest is still accepted. Default 0. */
  clockSkewMs?: number;
  /** Sent with the request (e.g. Authorization); all of them are dropped when a redirect leaves the origin. */
  headers?: Record<string, string>;
  /** Keeps a rotated key set (trust.json). */
  trustStore?: TrustStore;
  /** The fetch to use instead of the global one (an in-memory update service in tests). */
  fetch?: typeof fetch;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

async function readCapped(response: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  const tooLarge = () =>
    new UpdateError('MANIFEST_INVALID', `The manifest at ${url} is larger than ${maxBytes} bytes; raise maxManifestBytes if that is expected.`);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function toUpdateError(error: unknown, url: string): UpdateError {
  if (error instanceof UpdateError) return error;
  if (error instanceof HTTPError) {
    const { status } = error.response;
    const retryAfterMs = parseRetryAfter(error.response.headers.get('retry-after'));
    if (status >= 500 || status === 429 || status === 408) {
      return new UpdateError('SERVICE_UNAVAILABLE', `The update service answered ${status} for ${url}; the check will be retried later.`, {
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    return new UpdateError('DOWNLOAD_FAILED', `The update service answered ${status} for ${url}. Check the manifest URL.`);
  }
  if (error instanceof TimeoutError) {
    return new UpdateError('SERVICE_UNAVAILABLE', `The update service did not answer ${url} in time; the check will be retried later.`);
  }
  if ((error as Error)?.name === 'AbortError') return new UpdateError('CANCELLED', 'The check was cancelled.');
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not reach ${url} (${(error as Error)?.message ?? error}); the check will be retried later.`, {
    cause: error,
  });
}

type Fetched = { status: 304 } | { status: 200; body: Uint8Array; etag: string | null; url: string };

/** One GET of the manifest from one mirror, following redirects by hand. */
async function get(start: string, input: FetchManifestInput, options: FetchManifestOptions, signal: AbortSignal): Promise<Fetched> {
  let url = new URL(start);
  let headers: Record<string, string> = { ...options.headers };
  for (let redirects = 0; ; redirects++) {
    try {
      const response = await ky.get(url, {
        signal,
        timeout: options.timeoutMs,
        cache: 'no-store',
        redirect: 'manual',
        headers: input.etag ? { ...headers, 'if-none-match': input.etag } : headers,
        retry: { limit: options.retries, maxRetryAfter: options.maxInPlaceRetryAfterMs, backoffLimit: 2_000 },
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
      if (response.status === 304) return { status: 304 };
      return { status: 200, body: await readCapped(response, options.maxBytes, url.href), etag: response.headers.get('etag'), url: url.href };
    } catch (error) {
      // ky treats 304 and 3xx as error statuses; an unchanged manifest is a success, a redirect is followed.
      if (!(error instanceof HTTPError)) throw toUpdateError(error, url.href);
      const { status } = error.response;
      if (status === 304) return { status: 304 };
      if (!REDIRECT_STATUSES.has(status)) throw toUpdateError(error, url.href);
      const location = error.response.headers.get('location');
      if (location === null) throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} without a Location header; the server is misconfigured.`);
      if (redirects >= MAX_REDIRECTS) throw new UpdateError('DOWNLOAD_FAILED', `${start} redirected more than ${MAX_REDIRECTS} times; check the manifest URL.`);
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new UpdateError('DOWNLOAD_FAILED', `${url.href} redirected to ${next.href}, which is not http: or https:.`);
      }
      // Credentials were given for one origin: none of the configured headers follow a redirect elsewhere.
      if (next.origin !== url.origin) headers = {};
      url = next;
    }
  }
}

/** Fetches from one mirror and decides whether to trust what it served. */
async function fromMirror(mirror: string, input: FetchManifestInput, options: FetchManifestOptions, signal: AbortSignal): Promise<FetchManifestOutput> {
  const source = `The manifest at ${mirror}`;
  const clockSkewMs = options.clockSkewMs ?? 0;
  const fetched = await get(mirror, input, options, signal);
  if (fetched.status === 304) {
    // An unchanged manifest still expires: a server answering 304 forever must not freeze the updater.
    const expires = input.held?.expires;
    if (expires && !(Date.parse(expires) + clockSkewMs >= input.startedAt)) throw expired(source, expires, input.startedAt);
    return { notModified: true };
  }
  const document = parseStrictJson(fetched.body, source);
  const accepted = await acceptManifest(document, { trust: input.trust, allowUnsigned: options.allowUnsigned ?? false, now: input.startedAt, clockSkewMs }, source);
  // The same serial again: nothing new was published. Keep the manifest held, if there is one.
  if (accepted.sameSerial && input.held) return { notModified: true };
  if (accepted.rotated && options.trustStore) await options.trustStore.write(accepted.trust);
  return {
    notModified: false,
    etag: fetched.etag,
    manifest: accepted.manifest,
    trust: accepted.trust,
    url: fetched.url,
    unsigned: accepted.unsigned,
    rotated: accepted.rotated,
  };
}

/**
 * @example
 * const fetchManifest = createFetchManifest({ manifestUrl: [primary, mirror], maxBytes: 1 << 20, retries: 2, timeoutMs: 15_000, maxInPlaceRetryAfterMs: 5_000 })
 */
export function createFetchManifest(options: FetchManifestOptions) {
  const mirrors = typeof options.manifestUrl === 'string' ? [options.manifestUrl] : [...options.manifestUrl];
  return fromPromise<FetchManifestOutput, FetchManifestInput>(async ({ input, signal }) => {
    const failures: UpdateError[] = [];
    for (const mirror of mirrors) {
      try {
        return await fromMirror(mirror, input, options, signal);
      } catch (error) {
        const failure = toUpdateError(error, mirror);
        if (failure.code === 'CANCELLED' || signal.aborted) throw failure;
        failures.push(failure);
      }
    }
    // Every mirror failed. A mirror that served bad data says more than one that was down.
    const worst = failures.find((failure) => !isTransientCode(failure.code)) ?? failures[0];
    if (!worst) throw new UpdateError('INVALID_ARGUMENT', 'No manifestUrl was given, so there is nothing to check: pass the update service URL.');
    if (failures.length === 1) throw worst;
    const others = failures.filter((failure) => failure !== worst).map((failure) => failure.code);
    throw new UpdateError(worst.code, `All ${failures.length} mirrors failed (${others.join(', ')} and this): ${worst.message}`, worst.retryAfterMs === undefined ? {} : { retryAfterMs: worst.retryAfterMs });
  });
}
