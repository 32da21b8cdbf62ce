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
      const reader = response.body ? bodyReader(response.body) : undefined;
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

/** Bytes asked of the network at a time when the body is read into a buffer of ours. */
const READ_BYTES = 256 * 1024;

/**
 * Reads the body into one buffer of ours, again and again (a BYOB reader, where the browser's body is a
 * byte stream): the sink copies what it takes, so a download leaves no trail of network chunks for the
 * garbage collector to catch up with (which grows the page's memory by tens of MB on a large model).
 * Elsewhere, the default reader.
 */
function bodyReader(body: ReadableStream<Uint8Array>): { read(): Promise<ReadableStreamReadResult<Uint8Array>>; cancel(): Promise<void> } {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    return body.getReader();
  }
  let buffer = new ArrayBuffer(READ_BYTES);
  return {
    async read() {
      const result = await byob.read(new Uint8Array(buffer));
      // The read hands the same memory back in a new ArrayBuffer: the next read fills it again.
      if (result.value) buffer = result.value.buffer as ArrayBuffer;
      else if (!result.done) buffer = new ArrayBuffer(READ_BYTES);
      return result.done ? { done: true, value: undefined } : { done: false, value: result.value! };
    },
    cancel: () => byob.cancel(),
  };
}

