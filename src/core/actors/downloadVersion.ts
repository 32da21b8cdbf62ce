/**
 * Downloads every file of a version into staging, resuming partial files, hashing as bytes arrive:
 * the platform's transport and staging area composed by the one download algorithm. A file whose
 * content the store already holds is reused, once hashing its stored bytes proves it.
 */
import { fromPromise } from 'xstate';
import type { DownloadInput, DownloadOutput, DownloadProgress } from '../../../machines/types.js';
import { totalSize } from '../../../machines/selectCandidate.js';
import { downloadFile } from '../download/downloadFile.js';
import { deltaDownload, heldContent, type IndexCache } from '../delta/deltaDownload.js';
import { downloadParallel, goesParallel } from '../download/downloadParallel.js';
import type { RateBudget } from '../download/rateBudget.js';
import { resolveConnections, type DownloadLimits, type Timers } from '../download/transferGuard.js';
import type { StagingArea } from '../ports/stagingArea.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { Transport } from '../ports/transport.js';

export interface DownloadVersionOptions {
  store: ModelStore;
  transport: Transport;
  staging: StagingArea;
  manifestUrl: string;
  /** Slow-retrieval limits of each file, and its connections. */
  limits: DownloadLimits;
  /** The bandwidth cap every connection draws from. */
  budget?: RateBudget;
  /** Timers of the guards (the updater's clock when it has one). */
  timers: Timers;
  /** Receives sampled progress (at most one report per interval, plus the last one). */
  onProgress: (progress: DownloadProgress) => void;
  progressIntervalMs: number;
  now: () => number;
  /** Chunk indexes the check already fetched and checked. */
  indexCache?: IndexCache;
}

export function createDownloadVersion(options: DownloadVersionOptions) {
  const { store, transport, staging, manifestUrl, limits, timers, onProgress, progressIntervalMs, now, budget, indexCache } = options;
  const connections = resolveConnections(limits);
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
    /** Stored content that failed its hash and was removed: the audit trail says so (in this actor's output). */
    const discarded: string[] = [];
    // The chunks a differential download may copy: the files of the versions on the device.
    const held = candidate.files.some((file) => file.chunkIndex) ? await heldContent(store) : [];
    for (const file of candidate.files) {
      current = 0;
      // Content another version already holds is not downloaded again (promote links it), once proven.
      const stored = await store.verifyContent(file);
      if (stored === 'discarded') discarded.push(file.sha256);
      if (stored === 'verified') {
        done += file.size;
        digests.push({ path: file.path, size: file.size, sha256: file.sha256 });
        continue;
      }
      // Relative to the mirror that served the (verified) manifest.
      const base = input.baseUrl ?? manifestUrl;
      const delta = file.chunkIndex
        ? await deltaDownload({
            url: new URL(file.url, base).href,
            indexUrl: new URL(file.chunkIndex.url, base).href,
            expected: file,
            file: { version: candidate.version, path: file.path },
            held,
            transport,
            staging,
            store,
            signal,
            limits,
            timers,
            connections,
            ...(budget ? { budget } : {}),
            ...(indexCache ? { indexCache } : {}),
            onCopied: (delta) => {
              current += delta;
              report(false);
            },
            onBytes: (delta) => {
              current += delta;
              fetched += delta;
              report(false);
            },
          })
        : null;
      if (delta !== null) {
        current = 0;
        done += delta.size;
        digests.push({ path: file.path, size: delta.size, sha256: delta.sha256 });
        continue;
      }
      current = 0;
      // Large files over several connections where the platform writes at any offset; else in order.
      const download = goesParallel(staging, file.size, connections) ? downloadParallel : downloadFile;
      const result = await download({
        connections,
        ...(budget ? { budget } : {}),
        url: new URL(file.url, base).href,
        file: { version: candidate.version, path: file.path },
        expectedSize: file.size,
        transport,
        staging,
        signal,
        limits,
        timers,
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
      digests.push({ path: file.path, size: result.size, sha256: result.sha256 });
    }
    report(true);
    return { digests, fetchedBytes: fetched, ...(discarded.length === 0 ? {} : { discardedContent: discarded }) };
  });
}
