/**
 * Slow-retrieval defense for one transfer: aborts it when fewer than `minBytesPerSecond` arrive over a
 * sliding `windowMs`, so a server that trickles bytes cannot hold an update forever (the stall timeout
 * catches a server that sends nothing at all).
 */
import { UpdateError } from './errors.js';

export interface ThroughputLimits {
  /** Below this average over a window, the transfer fails with DOWNLOAD_STALLED. 0 or absent: no minimum. */
  minBytesPerSecond?: number;
  /** Window the average is taken over. Default 30 000 ms. */
  throughputWindowMs?: number;
}

export interface ThroughputGuard {
  /** Aborts when the parent aborts, or when the throughput is too low. */
  signal: AbortSignal;
  onBytes(delta: number): void;
  /** The DOWNLOAD_STALLED error when the guard aborted the transfer, else null. */
  readonly tripped: UpdateError | null;
  dispose(): void;
}

/**
 * @example
 * const guard = guardThroughput(signal, { minBytesPerSecond: 10_000 }, url)
 * try { await downloadFile({ ..., signal: guard.signal, onBytes: guard.onBytes }) } catch (e) { throw guard.tripped ?? e } finally { guard.dispose() }
 */
export function guardThroughput(parent: AbortSignal | undefined, limits: ThroughputLimits, url: string): ThroughputGuard {
  const controller = new AbortController();
  const forward = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', forward, { once: true });
  if (parent?.aborted) forward();
  const min = limits.minBytesPerSecond ?? 0;
  const windowMs = limits.throughputWindowMs ?? 30_000;
  let bytes = 0;
  let tripped: UpdateError | null = null;
  const timer =
    min > 0
      ? setInterval(() => {
          const rate = Math.round((bytes * 1000) / windowMs);
          bytes = 0;
          if (rate >= min) return;
          tripped = new UpdateError(
            'DOWNLOAD_STALLED',
            `${new URL(url).host} sent ${rate} B/s over ${windowMs} ms, below the minimum of ${min} B/s; the partial file is kept and the next attempt resumes it.`,
          );
          controller.abort(tripped);
        }, windowMs)
      : undefined;
  timer?.unref?.();
  return {
    signal: controller.signal,
    onBytes: (delta) => {
      bytes += delta;
    },
    get tripped() {
      return tripped;
    },
    dispose() {
      if (timer !== undefined) clearInterval(timer);
      parent?.removeEventListener('abort', forward);
    },
  };
}
