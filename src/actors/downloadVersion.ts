/**
 * Downloads every file of a version into staging, resuming partial files, hashing as bytes arrive.
 */
import { fromPromise } from 'xstate';
import type { DownloadInput, DownloadOutput, DownloadProgress } from '../../machines/types.js';
import { totalSize } from '../../machines/selectCandidate.js';
import type { ModelStore } from '../store.js';

export interface DownloadVersionOptions {
  store: ModelStore;
  manifestUrl: string;
  /** Receives sampled progress (at most one report per interval, plus the last one). */
  onProgress: (progress: DownloadProgress) => void;
  progressIntervalMs: number;
  now: () => number;
}

export function createDownloadVersion(options: DownloadVersionOptions) {
  const { store, manifestUrl, onProgress, progressIntervalMs, now } = options;
  return fromPromise<DownloadOutput, DownloadInput>(async ({ input, signal }) => {
    const { candidate } = input;
    const total = totalSize(candidate);
    const startedAt = now();
    let done = 0; // bytes of completed files
    let current = 0; // bytes of the file in progress, resumed prefix included
    let fetched = 0; // bytes over the network in this attempt
    let lastReport = startedAt; // the first report waits one interval, so its rate means something

    const report = (force: boolean) => {
      const at = now();
      if (!force && at - lastReport < progressIntervalMs) return;
      lastReport = at;
      const seconds = (at - startedAt) / 1000;
      const bytesPerSecond = seconds > 0 ? Math.round(fetched / seconds) : 0;
      const bytes = done + current;
      onProgress({
        version: candidate.version,
        bytes,
        total,
        bytesPerSecond,
        etaSeconds: bytesPerSecond > 0 ? Math.ceil((total - bytes) / bytesPerSecond) : null,
      });
    };

    const digests = [];
    for (const file of candidate.files) {
      current = 0;
      const result = await store.fetchToStaging({
        version: candidate.version,
        file,
        // Relative to the mirror that served the (verified) manifest.
        url: new URL(file.url, input.baseUrl ?? manifestUrl).href,
        signal,
        onBytes: (delta) => {
          current += delta;
          fetched += delta;
          report(false);
        },
        // A resumed file's progress starts at what the earlier attempt kept.
        onStart: (resumedFrom) => {
          current = resumedFrom;
        },
      });
      current = 0;
      done += result.size;
      digests.push({ path: result.path, size: result.size, sha256: result.sha256 });
    }
    report(true);
    return { digests };
  });
}
