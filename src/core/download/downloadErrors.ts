/**
 * Every error text of a model download, in one place: whatever the platform, the same failure reads
 * the same and carries the same code.
 */
import { UpdateError } from '../errors.js';

/** TLS failures that will not fix themselves by retrying. */
const TLS_CONFIG_ERRORS = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

const KEPT = 'the partial file is kept and the next attempt resumes it';

export function cancelled(): UpdateError {
  return new UpdateError('CANCELLED', `The download was cancelled; ${KEPT}.`);
}

export function headersTimedOut(url: URL, ms: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} did not send the response headers within ${ms} ms; ${KEPT}.`);
}

export function stalled(url: URL, ms: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} sent nothing for ${ms} ms; ${KEPT}.`);
}

export function tooSlow(url: URL, rate: number, windowMs: number, min: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} sent ${rate} B/s over ${windowMs} ms, below the minimum of ${min} B/s; ${KEPT}.`);
}

export function endedEarly(url: URL, size: number, expectedSize: number): UpdateError {
  return new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} ended after ${size} of ${expectedSize} bytes; ${KEPT}.`);
}

export function sizeMismatch(url: URL, what: string, expectedSize: number): UpdateError {
  return new UpdateError(
    'SIZE_MISMATCH',
    `The manifest says ${url.href} is ${expectedSize} bytes but ${what}; the partial file was deleted. The manifest or the server is out of date: check for updates again, or tell the publisher.`,
  );
}

export function serviceUnavailable(url: URL, status: number, retryAfterMs: number | undefined): UpdateError {
  const wait = retryAfterMs === undefined ? '' : ` and asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
  return new UpdateError('SERVICE_UNAVAILABLE', `${url.href} answered ${status}${wait}; try again later.`, retryAfterMs === undefined ? {} : { retryAfterMs });
}

export function unexpectedStatus(url: URL, status: number, statusText: string): UpdateError {
  const hint = status >= 400 ? 'check the URL in the manifest and the access rights' : 'the server does not serve plain files';
  return new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status}${statusText ? ` ${statusText}` : ''}; ${hint}.`);
}

export function brokenRanges(url: URL, status: number, restarted: boolean, prefix: number): UpdateError {
  const when = restarted ? 'even after starting over' : `to a request for bytes ${prefix}-`;
  return new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${when}; the server's range support is broken, tell the publisher.`);
}

/**
 * A failure of the transport: before the head (`phase` 'head') or inside the body. Node's parser
 * errors (HPE_*) and TLS configuration errors will not heal by retrying; anything else may.
 */
export function networkError(error: unknown, url: URL, phase: 'head' | 'body'): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const cause = (error as { cause?: unknown } | null)?.cause;
  const reason = describe(error);
  if (code.startsWith('HPE_')) {
    return new UpdateError('DOWNLOAD_FAILED', `${url.host} sent a malformed HTTP response (${reason}); the server is misconfigured, tell the publisher.`, { cause: error });
  }
  if (TLS_CONFIG_ERRORS.test(code) || TLS_CONFIG_ERRORS.test(String((cause as { code?: unknown } | null)?.code ?? ''))) {
    return new UpdateError('DOWNLOAD_FAILED', `TLS with ${url.host} failed (${reason}); check the server's certificate or the URL.`, { cause: error });
  }
  if (phase === 'body') {
    return new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} closed before the whole file arrived (${reason}); ${KEPT}.`, { cause: error });
  }
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not download from ${url.host} (${reason}); check the connection. Any partial file is kept and the next attempt resumes it.`, { cause: error });
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: unknown } | null)?.cause;
  // fetch's TypeError('fetch failed') says why only in its cause.
  return cause instanceof Error && cause.message && !message.includes(cause.message) ? `${message}: ${cause.message}` : message;
}
