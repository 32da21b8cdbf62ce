/**
 * The simulator's Transport: requests go to the in-memory update service (MemoryUpdateService.serve),
 * so its faults (offline, 503, truncated, corrupted, stalled, trickling bodies) meet the real download
 * algorithm. No network is used.
 */
import type { BodySink, Transport, TransportResponse } from '../core/ports/transport.js';
import type { MemoryUpdateService } from './memoryUpdateService.js';

/**
 * @example
 * const transport = memoryTransport(service)
 * await downloadFile({ url, file, expectedSize, transport, staging: store.staging, timers })
 */
export function memoryTransport(service: MemoryUpdateService): Transport {
  return {
    async get({ url, headers, signal }) {
      if (signal.aborted) throw signal.reason;
      const served = await service.serve(url.href, headers, signal);
      const iterator = served.body[Symbol.asyncIterator]();
      let resume: (() => void) | undefined;
      let closed = false;
      const response: TransportResponse = {
        status: served.status,
        statusText: '',
        headers: served.headers,
        resume: () => {
          const go = resume;
          resume = undefined;
          go?.();
        },
        close: () => {
          closed = true;
          void iterator.return?.();
        },
        receive: async (sink: BodySink) => {
          const aborted = new Promise<never>((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          });
          aborted.catch(() => undefined);
          for (;;) {
            if (closed) throw new Error('the connection was closed');
            const next = await Promise.race([iterator.next(), aborted]);
            if (next.done) return;
            if (!sink.write(next.value)) await Promise.race([new Promise<void>((resolve) => (resume = resolve)), aborted]);
          }
        },
      };
      return response;
    },
  };
}
