/**
 * The browser Transport: `fetch`. A browser follows redirects itself (a page cannot read a redirect's
 * Location), dropping Authorization when one leaves the origin as the Fetch standard says; whatever
 * else a download means is decided in download/downloadFile.ts, as on every platform.
 */
import type { BodySink, Transport } from '../core/ports/transport.js';

/**
 * @example
 * const transport = fetchTransport()
 * const response = await transport.get({ url: new URL(href), headers: { range: 'bytes=100-' }, signal })
 */
export function fetchTransport(fetchImpl: typeof fetch = (...args) => globalThis.fetch(...args)): Transport {
  return {
    async get({ url, headers, signal }) {
      const response = await fetchImpl(url.href, { headers, signal, cache: 'no-store', redirect: 'follow' });
      const names: Record<string, string> = {};
      response.headers.forEach((value, name) => (names[name] = value));
      // The browser decodes a compressed body: its Content-Length is not the file's size.
      const encoding = names['content-encoding'];
      if (encoding !== undefined && encoding !== 'identity') delete names['content-length'];
      const reader = response.body?.getReader();
      let resume: (() => void) | undefined;
      return {
        status: response.status,
        statusText: response.statusText,
        headers: names,
        resume: () => {
          const go = resume;
          resume = undefined;
          go?.();
        },
        close: () => {
          reader?.cancel().catch(() => undefined);
        },
        receive: async (sink: BodySink) => {
          if (!reader) return;
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            if (!sink.write(value)) {
              await new Promise<void>((resolve, reject) => {
                resume = resolve;
                if (signal.aborted) reject(signal.reason);
                signal.addEventListener('abort', () => reject(signal.reason), { once: true });
              });
            }
          }
        },
      };
    },
  };
}
