/**
 * The fetch ky uses for the manifest on Node: a GET over node:http / node:https. ky keeps doing what it
 * does (timeouts, quick retries, Retry-After, error statuses); only the transport underneath changes.
 *
 * Why not the global fetch: undici's first real request sets up its WebAssembly HTTP parser, and that
 * work lands on top of the model download that follows: about 30 MB of extra peak RSS in the first
 * 100 ms of a 1 GiB download (bench/download.ts). node:http is loaded anyway for the bulk transfer.
 *
 * Scope: GET and HEAD without a body, which is all the manifest needs. Redirects are never followed (as
 * with `redirect: 'manual'`): the caller follows them itself, so credentials never leave their origin.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { connectThroughProxy, proxyRefusal, type ProxySetting } from './proxy.js';

/** How long a proxy may take to accept the connection and open a tunnel, within the manifest's own timeout. */
const PROXY_TIMEOUT_MS = 10_000;

/**
 * The manifest's fetch, through the proxy that `proxy` (or else HTTPS_PROXY / HTTP_PROXY / NO_PROXY) names.
 *
 * @example
 * const response = await ky.get(manifestUrl, { fetch: createHttpFetch({ proxy: 'http://proxy:3128' }), redirect: 'manual' })
 */
export function createHttpFetch(options: { proxy?: ProxySetting } = {}): typeof fetch {
  return (input, init) => fetchOverHttp(input, init, options.proxy);
}

/**
 * The manifest's fetch, through the proxy the environment names.
 *
 * @example
 * const response = await ky.get(manifestUrl, { fetch: httpFetch, redirect: 'manual' })
 */
export const httpFetch: typeof fetch = createHttpFetch();

async function fetchOverHttp(input: Parameters<typeof fetch>[0], init: Parameters<typeof fetch>[1], proxy: ProxySetting): Promise<Response> {
  const request = new Request(input, init);
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    throw new TypeError(`httpFetch only sends GET and HEAD requests, not ${request.method}.`);
  }
  const url = new URL(request.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`httpFetch cannot fetch ${url.protocol} URLs.`);
  const { signal } = request;
  signal.throwIfAborted();
  // A proxy that is down or refuses rejects here with an UpdateError naming it, never a direct request.
  const connecting = connectThroughProxy(url, { proxy, signal, timeoutMs: PROXY_TIMEOUT_MS });
  const proxied = connecting && (await connecting);
  if (signal.aborted) proxied?.socket.destroy();
  signal.throwIfAborted();

  return new Promise<Response>((resolve, reject) => {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    request.headers.forEach((value, name) => (headers[name] = value));
    Object.assign(headers, proxied?.headers);
    const client = (url.protocol === 'https:' ? https : http).request(url, {
      method: request.method,
      headers,
      ...(proxied === undefined ? { agent: false } : { createConnection: () => proxied.socket, path: proxied.target }),
    });
    const onAbort = (): void => {
      client.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    client.on('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      // The global fetch's shape: a TypeError whose cause is the network error.
      reject(new TypeError(`fetch failed: ${error.message}`, { cause: error }));
    });
    client.on('response', (incoming) => {
      const status = incoming.statusCode ?? 0;
      // Keeps listening while the body streams, so an abort also ends the body (closed by the server otherwise).
      incoming.on('close', () => signal.removeEventListener('abort', onAbort));
      const refusal = proxyRefusal(proxied, url, status);
      if (refusal !== undefined) {
        incoming.destroy();
        reject(refusal);
        return;
      }
      const responseHeaders = new Headers();
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) responseHeaders.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!);
      const noBody = request.method === 'HEAD' || status === 204 || status === 304;
      if (noBody) incoming.resume();
      try {
        resolve(
          new Response(noBody ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>), {
            status,
            statusText: incoming.statusMessage ?? '',
            headers: responseHeaders,
          }),
        );
      } catch (error) {
        // A status the Response class refuses (below 200 or above 599): not an HTTP server we can talk to.
        incoming.destroy();
        reject(new TypeError(`fetch failed: ${url.host} answered with status ${status}`, { cause: error }));
      }
    });
    client.end();
  });
};
