/**
 * Asks the update service for its manifest and decides whether to trust it: If-None-Match so an
 * unchanged manifest costs one 304, mirrors tried in order, redirects followed by hand so credentials
 * never reach another origin, a size cap, strict JSON, then signatures, rotation, rollback and expiry.
 *
 * One deadline per mirror covers the whole answer (redirects, headers and body), armed once and never
 * re-armed by arriving bytes: a server that drips the body cannot hold the check (and the folder lock).
 * A failed request is not retried here: the chart defers the check (journaled), honouring Retry-After.
 * Beside a new manifest it reads the signed chunk-index document when the update could use it.
 */
import ky, { HTTPError } from 'ky';
import { fromPromise } from 'xstate';
import type { FetchManifestInput, FetchManifestOutput, ManifestVersion, TrustState } from '../../../machines/types.js';
import { selectCandidate } from '../../../machines/selectCandidate.js';
import { systemTimers, type TimerSource } from '../backgroundTimers.js';
import { isTransientCode, UpdateError } from '../errors.js';
import { parseRetryAfter } from '../retryAfter.js';
import { acceptChunkIndexes } from '../trust/acceptChunkIndexes.js';
import { acceptManifest, expired } from '../trust/acceptManifest.js';
import { chunkIndexDocumentUrl, lacksChunkIndexes, withChunkIndexes, type ChunkIndexEntry } from '../manifest/chunkIndexDocument.js';
import { parseStrictJson } from '../trust/strictJson.js';

export interface FetchManifestOptions {
  /** The manifest's URL, or several mirrors tried in order; a mirror that fails or serves bad data is skipped. */
  manifestUrl: string | readonly string[];
  /** Largest manifest accepted, in bytes. */
  maxBytes: number;
  /**
   * Quick retries inside one request (ky's), opt-in; default 0: the chart's deferred check retries,
   * journaled. An answer with Retry-After is never retried in place.
   */
  retries?: number;
  /** Deadline for the whole answer of one mirror (headers and body), from the request to the last byte. */
  timeoutMs: number;
  /** Timer source of the deadline (xstate's SimulatedClock in tests). Default the system's. */
  timers?: TimerSource;
  /** Accept manifests without signatures (only when no trusted keys are configured). */
  allowUnsigned?: boolean;
  /** How far past its `expires` a manifest is still accepted. Default 0. */
  clockSkewMs?: number;
  /** Sent with the request (e.g. Authorization); all of them are dropped when a redirect leaves the origin. */
  headers?: Record<string, string>;
  /** Keeps the trust state (keys, threshold, highest serial, rotation) outside the log: trust.json on Node. */
  trustStore?: { write(trust: TrustState): Promise<void> };
  /** The fetch to use instead of the global one (an in-memory update service in tests). */
  fetch?: typeof fetch;
  /**
   * The bytes the update to `candidate` would fetch (delta/estimateFetch.ts), reported with the
   * candidate (`update-available`, `check`). A failure leaves the estimate out, nothing more.
   */
  estimateFetch?: (candidate: ManifestVersion, baseUrl: string, signal: AbortSignal) => Promise<number>;
  /**
   * Whether a differential update to `candidate` could use chunk indexes its manifest does not name:
   * then the check reads the chunk-index document beside a new manifest. Absent: never.
   */
  wantsChunkIndexes?: (candidate: ManifestVersion) => boolean;
}

/** The output with the estimate of its candidate's update, when the input says how to select it. */
async function withEstimate(output: FetchManifestOutput, mirror: string, input: FetchManifestInput, options: FetchManifestOptions, signal: AbortSignal): Promise<FetchManifestOutput> {
  const { selection } = input;
  if (!options.estimateFetch || !selection) return output;
  const manifest = output.notModified ? selection.manifest : output.manifest;
  const candidate = manifest ? selectCandidate(manifest, selection.config, selection.active, selection.quarantine) : null;
  if (!candidate) return output;
  try {
    const fetchBytes = await options.estimateFetch(candidate, output.notModified ? mirror : output.url, signal);
    return { ...output, estimate: { version: candidate.version, fetchBytes } };
  } catch (error) {
    if (signal.aborted) throw new UpdateError('CANCELLED', 'The check was cancelled.');
    return output;
  }
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

async function readCapped(response: Response, maxBytes: number, url: string, signal: AbortSignal): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  const tooLarge = () =>
    new UpdateError('MANIFEST_INVALID', `The manifest at ${url} is larger than ${maxBytes} bytes; raise maxManifestBytes if that is expected.`);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const reader = response.body!.getReader();
  // ky's fetch does not end the body on abort (and a cancelled read just reports `done`): do both here.
  const onAbort = () => void reader.cancel(signal.reason).catch(() => undefined);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
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
    // 401, 403, 404, 410...: the service refuses this request, and asking again will not change that.
    const hint = status === 401 || status === 403 ? 'Check the credentials (headers) the updater sends' : 'Check the manifest URL';
    return new UpdateError('SERVICE_REJECTED', `The update service refused the manifest request: ${url} answered ${status}. ${hint}; the active model is unchanged.`);
  }
  if ((error as Error)?.name === 'AbortError') return new UpdateError('CANCELLED', 'The check was cancelled.');
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not reach ${url} (${(error as Error)?.message ?? error}); the check will be retried later.`, {
    cause: error,
  });
}

type Fetched = { status: 304 } | { status: 200; body: Uint8Array; etag: string | null; url: string };

/** One GET of the manifest from one mirror, following redirects by hand. */
async function get(start: string, etag: string | null, options: FetchManifestOptions, signal: AbortSignal): Promise<Fetched> {
  let url = new URL(start);
  let headers: Record<string, string> = { ...options.headers };
  for (let redirects = 0; ; redirects++) {
    try {
      const response = await ky.get(url, {
        signal,
        // The caller's deadline covers headers and body; ky's own timeout would stop at the headers.
        timeout: false,
        cache: 'no-store',
        redirect: 'manual',
        headers: etag ? { ...headers, 'if-none-match': etag } : headers,
        retry: {
          limit: options.retries ?? 0,
          backoffLimit: 2_000,
          // ky would cut a long Retry-After down to its maxRetryAfter and ask again early: the chart waits it out.
          shouldRetry: ({ error }) => (error instanceof HTTPError && error.response.headers.has('retry-after') ? false : undefined),
        },
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
      if (response.status === 304) return { status: 304 };
      return { status: 200, body: await readCapped(response, options.maxBytes, url.href, signal), etag: response.headers.get('etag'), url: url.href };
    } catch (error) {
      // ky treats 304 and 3xx as error statuses; an unchanged manifest is a success, a redirect is followed.
      if (signal.aborted) throw signal.reason;
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

/**
 * Runs one mirror's request under a deadline armed once: when it passes, the request and its body are
 * aborted and the check fails as SERVICE_UNAVAILABLE (deferred and retried like an outage).
 */
async function withDeadline<T>(
  mirror: string,
  options: FetchManifestOptions,
  signal: AbortSignal,
  run: (signal: AbortSignal) => Promise<T>,
  late = { what: 'the manifest', then: 'The check will be retried later.' },
): Promise<T> {
  const controller = new AbortController();
  const seconds = Math.round(options.timeoutMs / 100) / 10;
  const tooSlow = new UpdateError(
    'SERVICE_UNAVAILABLE',
    `The service sent ${late.what} too slowly: ${mirror} did not send its complete answer within ${seconds} s (manifestTimeoutMs). ${late.then}`,
  );
  const timers = options.timers ?? systemTimers;
  const timer = timers.setTimeout(() => controller.abort(tooSlow), options.timeoutMs);
  const cancel = () => controller.abort(new UpdateError('CANCELLED', 'The check was cancelled.'));
  if (signal.aborted) cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await run(controller.signal);
  } catch (error) {
    throw controller.signal.aborted ? controller.signal.reason : error;
  } finally {
    timers.clearTimeout(timer);
    signal.removeEventListener('abort', cancel);
  }
}

/**
 * Decoding, canonicalising and validating what a server sent: any failure there that is not already
 * typed (a parser or canonicaliser bug, a hostile document) is a bad manifest, never a network code, so
 * tampering never looks like an outage.
 */
async function decoded<T>(source: string, decode: () => Promise<T>): Promise<T> {
  try {
    return await decode();
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    throw new UpdateError('MANIFEST_INVALID', `${source} could not be decoded (${(error as Error)?.message ?? String(error)}). Fix the manifest on the update service (re-run \`model-updater publish\`); the active model is unchanged.`, { cause: error });
  }
}

/** Fetches from one mirror and decides whether to trust what it served. */
async function fromMirror(mirror: string, input: FetchManifestInput, options: FetchManifestOptions, signal: AbortSignal): Promise<FetchManifestOutput> {
  const source = `The manifest at ${mirror}`;
  const clockSkewMs = options.clockSkewMs ?? 0;
  const fetched = await withDeadline(mirror, options, signal, (deadlineSignal) => get(mirror, input.etag, options, deadlineSignal));
  if (fetched.status === 304) {
    // An unchanged manifest still expires: a server answering 304 forever must not freeze the updater.
    const expires = input.held?.expires;
    if (expires && !(Date.parse(expires) + clockSkewMs >= input.startedAt)) throw expired(source, expires, input.startedAt);
    return { notModified: true };
  }
  const accepted = await decoded(source, async () => {
    const document = parseStrictJson(fetched.body, source);
    return acceptManifest(document, { trust: input.trust, allowUnsigned: options.allowUnsigned ?? false, now: input.startedAt, clockSkewMs }, source);
  });
  // The same serial again: nothing new was published. Keep the manifest held, if there is one.
  if (accepted.sameSerial && input.held) return { notModified: true };
  // The anti-rollback serial and the key set are kept outside the log too, durably, before the chart
  // records them: a log cut short or set aside must not let an older manifest in again.
  if (options.trustStore && (accepted.rotated || accepted.trust.serial !== input.trust.serial)) await options.trustStore.write(accepted.trust);
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

/** A manifest accepted from a mirror: where it came from and the trust it left. */
export type AcceptedManifest = Extract<FetchManifestOutput, { notModified: false }>;

/**
 * Fetches and checks the chunk-index document beside an accepted manifest (chunkIndexDocument.ts), with
 * the manifest's request rules (deadline, size cap, redirects, headers). Throws the typed error.
 * @example
 * const entries = await fetchChunkIndexDocument(accepted, options, signal)
 */
export async function fetchChunkIndexDocument(accepted: AcceptedManifest, options: FetchManifestOptions, signal: AbortSignal): Promise<ChunkIndexEntry[]> {
  const url = chunkIndexDocumentUrl(accepted.url);
  const source = `The chunk-index document at ${url}`;
  const fetched = await withDeadline(url, options, signal, (deadlineSignal) => get(url, null, options, deadlineSignal), {
    what: 'the chunk-index document',
    then: 'Updates download changed files whole until it comes in time.',
  });
  if (fetched.status === 304) throw new UpdateError('UNKNOWN', `${url} answered 304 to a request without a validator.`);
  const policy = { trust: accepted.trust, unsigned: accepted.unsigned, modelId: accepted.manifest.modelId };
  return decoded(source, () => acceptChunkIndexes(parseStrictJson(fetched.body, source), policy, source));
}

/**
 * A new manifest with the chunk indexes its signed chunk-index document names, read when the candidate
 * has a file a differential download could use one for (on a first install too: the index is kept, so
 * the next update need not compute it from the file). They only make downloads smaller: a document
 * that is missing, late, unsigned or invalid leaves the manifest as it is (those files download whole).
 */
async function withChunkIndexDocument(output: FetchManifestOutput, input: FetchManifestInput, options: FetchManifestOptions, signal: AbortSignal): Promise<FetchManifestOutput> {
  const { selection } = input;
  if (output.notModified || !options.wantsChunkIndexes || !selection || !lacksChunkIndexes(output.manifest)) return output;
  const candidate = selectCandidate(output.manifest, selection.config, selection.active, selection.quarantine);
  if (!candidate || !options.wantsChunkIndexes(candidate)) return output;
  try {
    return { ...output, manifest: withChunkIndexes(output.manifest, await fetchChunkIndexDocument(output, options, signal)) };
  } catch {
    if (signal.aborted) throw new UpdateError('CANCELLED', 'The check was cancelled.');
    return output;
  }
}

/**
 * @example
 * const fetchManifest = createFetchManifest({ manifestUrl: [primary, mirror], maxBytes: 1 << 20, timeoutMs: 30_000 })
 */
export function createFetchManifest(options: FetchManifestOptions) {
  const mirrors = typeof options.manifestUrl === 'string' ? [options.manifestUrl] : [...options.manifestUrl];
  return fromPromise<FetchManifestOutput, FetchManifestInput>(async ({ input, signal }) => {
    const failures: UpdateError[] = [];
    for (const mirror of mirrors) {
      try {
        const output = await withChunkIndexDocument(await fromMirror(mirror, input, options, signal), input, options, signal);
        return await withEstimate(output, mirror, input, options, signal);
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
