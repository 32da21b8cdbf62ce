/**
 * An update service that lives in memory: it publishes and changes versions, and misbehaves on demand
 * (offline, 503 with Retry-After, truncated, corrupted, stalled or trickling bodies). The manifest is
 * served through a `fetch` function returning real `Response` objects; model files through `serve()`,
 * which answers like a static file host (ranges with their validator, ETag, Content-Length / Content-Range) and
 * which the simulator's transport (memoryTransport.ts) hands to the real download. No network is used.
 */
import { createHash } from 'node:crypto';
import type { Manifest, ManifestVersion } from '../../machines/types.js';
import { RANGE_VALIDATOR_HEADER } from '../core/download/downloadFile.js';
import type { SimulatedProcess } from './simulatedProcess.js';

/** How the service misbehaves; several may hold at once. */
export interface ServiceFaults {
  /** No connection at all (fetch rejects like a refused connection). */
  offline?: boolean;
  /** Every request answers 503, with `Retry-After` when given (rounded up to seconds). */
  unavailable?: { retryAfterMs?: number };
  /** File bodies end (the connection drops) after this many bytes. */
  truncateAfter?: number;
  /** File bodies arrive with one byte flipped. */
  corrupt?: boolean;
  /** File bodies stop sending (before each chunk) until heal() or the transfer's stall timeout. */
  stall?: boolean;
  /** File bodies arrive `bytes` at a time, one piece every `everyMs` of the simulated clock (a slow link, or a slow-retrieval attack). */
  trickle?: { bytes: number; everyMs: number };
}

/** A model file as the service answers it: an HTTP response in memory. */
export interface ServedFile {
  status: number;
  /** Lowercase names: content-length, content-range, etag, retry-after. */
  headers: Record<string, string>;
  /** The body, in chunks; throws when the connection drops. */
  body: AsyncIterable<Uint8Array>;
}

/** Timers of the simulated clock, for trickling bodies. */
export interface ServiceTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface PublishOptions {
  channel?: string;
  requiresApp?: string;
}

const CHUNK = 4096;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * @example
 * const service = new MemoryUpdateService(process)
 * service.publish('1.0.0', { 'model.bin': new Uint8Array(1000) })
 * createUpdater({ manifestUrl: service.manifestUrl, allowUnsigned: true }, { store, openLog, fetch: service.fetch })
 */
export class MemoryUpdateService {
  /** `.invalid` never resolves: nothing here could reach a real host even by mistake. */
  readonly manifestUrl = 'https://updates.simulated.invalid/model/manifest.json';
  faults: ServiceFaults = {};
  /** Every request, in order: `manifest` or the file URL with its starting offset. */
  readonly requests: Array<{ kind: 'manifest' | 'file'; url: string; offset: number; ifRange?: string }> = [];
  private readonly versions = new Map<string, { entry: ManifestVersion; files: Map<string, Uint8Array> }>();
  private revision = 0;

  constructor(
    private readonly process: SimulatedProcess,
    /** The simulated clock, which a `trickle` fault needs. */
    private readonly timers?: ServiceTimers,
  ) {}

  /** Publishes a version, or changes one already published (a new build under the same number). */
  publish(version: string, files: Record<string, Uint8Array | string>, options: PublishOptions = {}): ManifestVersion {
    const contents = new Map(Object.entries(files).map(([path, content]) => [path, typeof content === 'string' ? new TextEncoder().encode(content) : content]));
    const entry: ManifestVersion = {
      version,
      channel: options.channel ?? 'stable',
      ...(options.requiresApp ? { requires: { app: options.requiresApp } } : {}),
      files: [...contents].map(([path, bytes]) => ({ path, size: bytes.byteLength, sha256: sha256(bytes), url: `${version}/${path}` })),
    };
    this.versions.set(version, { entry, files: contents });
    this.revision++;
    return entry;
  }

  /** Takes a version off the manifest (its files go too). */
  unpublish(version: string): void {
    if (this.versions.delete(version)) this.revision++;
  }

  published(): string[] {
    return [...this.versions.keys()];
  }

  manifest(): Manifest {
    return { schemaVersion: 1, modelId: 'simulated', versions: [...this.versions.values()].map((v) => v.entry) };
  }

  /** The bytes of a published file, for checks. */
  content(version: string, path: string): Uint8Array | undefined {
    return this.versions.get(version)?.files.get(path);
  }

  /** Answers manifest requests like a static file host: ETag, 304, 503 with Retry-After, 404. */
  readonly fetch: typeof fetch = async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    this.requests.push({ kind: 'manifest', url: request.url, offset: 0 });
    if (this.faults.offline) throw new TypeError('fetch failed (simulated: the update service is unreachable)');
    const unavailable = this.unavailableHeaders();
    if (unavailable) return new Response('unavailable', { status: 503, headers: unavailable });
    if (request.url !== this.manifestUrl) return new Response('not found', { status: 404 });
    const etag = `"rev-${this.revision}"`;
    if (request.headers.get('if-none-match') === etag) return new Response(null, { status: 304, headers: { etag } });
    return new Response(JSON.stringify(this.manifest()), { status: 200, headers: { etag, 'content-type': 'application/json' } });
  };

  /**
   * Answers a model file request like a static file host: `range: bytes=N-` (honoured unless its
   * validator names another ETag), 416 past the end, ETag per content.
   * @example
   * const served = await service.serve(url, { range: 'bytes=100-' }, signal); for await (const chunk of served.body) ...
   */
  async serve(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<ServedFile> {
    const range = /^bytes=(\d+)-$/.exec(headers.range ?? '');
    const requested = range ? Number(range[1]) : 0;
    // The header's name is the download's (download/downloadFile.ts), the one place that sends it.
    const validator = headers[RANGE_VALIDATOR_HEADER];
    this.requests.push({ kind: 'file', url, offset: requested, ...(validator === undefined ? {} : { ifRange: validator }) });
    if (this.faults.offline) throw new TypeError('connect ECONNREFUSED (simulated)');
    const unavailable = this.unavailableHeaders();
    if (unavailable) return { status: 503, headers: unavailable, body: empty() };
    const path = new URL(url).pathname.replace(/^\/model\//, '');
    const slash = path.indexOf('/');
    const bytes = this.versions.get(path.slice(0, slash))?.files.get(path.slice(slash + 1));
    if (!bytes) return { status: 404, headers: {}, body: empty() };
    const etag = `"${sha256(bytes).slice(0, 16)}"`;
    const faults = { ...this.faults };
    const body = faults.corrupt && bytes.byteLength > 0 ? flipped(bytes) : bytes;
    const ranged = range !== null && (validator === undefined || validator === etag);
    if (ranged && requested >= body.byteLength && body.byteLength > 0) {
      return { status: 416, headers: { 'content-range': `bytes */${body.byteLength}` }, body: empty() };
    }
    const start = ranged ? requested : 0;
    const answer: Record<string, string> = { etag, 'content-length': String(body.byteLength - start) };
    if (ranged) answer['content-range'] = `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`;
    return { status: ranged ? 206 : 200, headers: answer, body: this.chunks(body, start, faults, signal) };
  }

  private async *chunks(body: Uint8Array, start: number, faults: ServiceFaults, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const end = faults.truncateAfter === undefined ? body.byteLength : Math.min(body.byteLength, start + faults.truncateAfter);
    const step = faults.trickle?.bytes ?? CHUNK;
    for (let at = start; at < end; at += step) {
      // Read live: heal() clears the fault and releases the waits.
      if (this.faults.stall) await this.process.stall(signal);
      if (faults.trickle) await this.wait(faults.trickle.everyMs, signal);
      yield body.subarray(at, Math.min(end, at + step));
    }
    if (end < body.byteLength) throw new TypeError(`socket hang up after ${end - start} bytes (simulated)`);
  }

  /** Waits on the simulated clock; rejects when the request is aborted. */
  private wait(ms: number, signal: AbortSignal): Promise<void> {
    const timers = this.timers;
    if (!timers) throw new Error('A trickle fault needs the simulated clock: new MemoryUpdateService(process, clock).');
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        timers.clearTimeout(id);
        reject(new Error('aborted'));
      };
      const id = timers.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private unavailableHeaders(): Record<string, string> | null {
    const unavailable = this.faults.unavailable;
    if (!unavailable) return null;
    return unavailable.retryAfterMs === undefined ? {} : { 'retry-after': String(Math.ceil(unavailable.retryAfterMs / 1000)) };
  }
}

async function* empty(): AsyncIterable<Uint8Array> {}

function flipped(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[copy.length >> 1]! ^= 0xff;
  return copy;
}
