/**
 * Asks the update service for its manifest, with If-None-Match so an unchanged manifest costs one 304.
 */
import ky, { HTTPError, TimeoutError } from 'ky';
import { fromPromise } from 'xstate';
import type { FetchManifestInput, FetchManifestOutput } from '../../machines/types.js';
import { UpdateError } from '../errors.js';
import { parseManifestText } from '../manifest/schema.js';
import { parseRetryAfter } from '../retryAfter.js';

export interface FetchManifestOptions {
  manifestUrl: string;
  /** Largest manifest accepted, in bytes. */
  maxBytes: number;
  /** Quick retries inside one check (ky's), before the chart's own back-off takes over. */
  retries: number;
  timeoutMs: number;
  /** Longest Retry-After ky waits in place; a longer one ends the check and defers it. */
  maxInPlaceRetryAfterMs: number;
}

async function readCapped(response: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  const tooLarge = () =>
    new UpdateError('MANIFEST_INVALID', `The manifest at ${url} is larger than ${maxBytes} bytes; raise maxManifestBytes if that is expected.`);
  if (declared > maxBytes) throw tooLarge();
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
  return Buffer.concat(chunks).toString('utf8');
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

export function createFetchManifest(options: FetchManifestOptions) {
  return fromPromise<FetchManifestOutput, FetchManifestInput>(async ({ input, signal }) => {
    const url = options.manifestUrl;
    try {
      const response = await ky.get(url, {
        signal,
        timeout: options.timeoutMs,
        cache: 'no-store',
        headers: input.etag ? { 'if-none-match': input.etag } : {},
        retry: { limit: options.retries, maxRetryAfter: options.maxInPlaceRetryAfterMs, backoffLimit: 2_000 },
      });
      if (response.status === 304) return { notModified: true };
      const text = await readCapped(response, options.maxBytes, url);
      return { notModified: false, etag: response.headers.get('etag'), manifest: parseManifestText(text, `The manifest at ${url}`) };
    } catch (error) {
      // ky treats 304 as an error status when it is not 2xx-ok; an unchanged manifest is a success here.
      if (error instanceof HTTPError && error.response.status === 304) return { notModified: true };
      throw toUpdateError(error, url);
    }
  });
}
