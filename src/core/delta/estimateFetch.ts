/**
 * The bytes an update will fetch, before it downloads: per file, nothing when the device stores its
 * content already, the planned spans when its chunk index (fetched and checked here) shares chunks with
 * what the device holds, else the whole file. What `update-available` and `check` report as `fetchBytes`.
 */
import type { ManifestVersion } from '../../../machines/types.js';
import type { DownloadLimits, Timers } from '../download/transferGuard.js';
import { UpdateError } from '../errors.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { StagingArea } from '../ports/stagingArea.js';
import type { Transport } from '../ports/transport.js';
import { DELTA_MIN_FILE_BYTES, heldContent, planFileDelta, supportsDifferential, type IndexCache } from './deltaDownload.js';

export interface EstimateFetchOptions {
  store: ModelStore;
  staging: StagingArea;
  transport: Transport;
  /** The URL the manifest came from: file and index URLs are relative to it. */
  baseUrl: string;
  signal?: AbortSignal;
  limits?: DownloadLimits;
  timers?: Timers;
  headers?: Record<string, string>;
  /** Where the checked indexes are kept for the download. */
  indexCache?: IndexCache;
}

/**
 * @example
 * const bytes = await estimateFetchBytes(candidate, { store, staging, transport, baseUrl: manifestUrl })
 */
export async function estimateFetchBytes(candidate: ManifestVersion, options: EstimateFetchOptions): Promise<number> {
  const { store, staging } = options;
  const differential = supportsDifferential(store, staging);
  const held = differential && candidate.files.some((file) => file.chunkIndex) ? await heldContent(store) : [];
  let bytes = 0;
  for (const file of candidate.files) {
    if (await store.hasContent(file.sha256).catch(() => false)) continue;
    if (!differential || !file.chunkIndex || held.length === 0 || file.size < DELTA_MIN_FILE_BYTES) {
      bytes += file.size;
      continue;
    }
    const planned = await planFileDelta({
      indexUrl: new URL(file.chunkIndex.url, options.baseUrl).href,
      expected: file,
      file: { version: candidate.version, path: file.path },
      held,
      transport: options.transport,
      staging,
      store,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.timers ? { timers: options.timers } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.indexCache ? { indexCache: options.indexCache } : {}),
    }).catch((error: unknown) => {
      if (error instanceof UpdateError && error.code === 'CANCELLED') throw error;
      return null; // the download finds out again, and fails with the typed error
    });
    if (planned === null) {
      bytes += file.size;
      continue;
    }
    bytes += planned.plan.copies.length === 0 ? file.size : planned.plan.fetchBytes;
  }
  return bytes;
}
