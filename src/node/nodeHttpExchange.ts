/**
 * The general transport for one GET: node:http / node:https, which handle every form of response
 * (chunked and close-delimited bodies, interim responses, lenient heads). The download uses it when
 * the direct transport declines a response (directHttpExchange.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { closedEarly, ExchangeControl, networkError, pipeBody, type Exchange, type ExchangeOptions } from './exchange.js';
import { connectExchange, proxyRefusal } from './proxy.js';

/**
 * Sends the GET and resolves once the response head is in, with the body paused so the caller can
 * decide what to do with it. Rejects with an UpdateError if no head arrives.
 */
export async function openNodeHttpExchange(url: URL, headers: Record<string, string>, options: ExchangeOptions): Promise<Exchange> {
  // Through a proxy, the request goes on the connection proxy.ts opened (a CONNECT tunnel for https).
  const connecting = connectExchange(url, options);
  const proxied = connecting && (await connecting);
  return new Promise<Exchange>((resolveHead, rejectHead) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'GET',
      headers: { ...headers, ...proxied?.headers, 'accept-encoding': 'identity', connection: 'close' },
      ...(proxied === undefined ? { agent: false } : { createConnection: () => proxied.socket, path: proxied.target }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    const control = new ExchangeControl(url, options, () => request.destroy(), rejectHead);
    request.on('error', (error) => control.fail(networkError(error, url)));
    request.on('response', (response) => {
      const refusal = proxyRefusal(proxied, url, response.statusCode ?? 0);
      if (refusal !== undefined) return control.fail(refusal);
      response.pause();
      // Until receive() is called, the body waits; a stall or abort still ends the exchange.
      response.on('error', (error) => control.fail(networkError(error, url)));
      resolveHead({
        status: response.statusCode ?? 0,
        statusText: response.statusMessage ?? '',
        headers: joinHeaders(response.headers),
        close: () => control.close(),
        receive: (sink) => {
          const body = pipeBody(control, sink, () => response.resume(), true);
          response.on('data', (chunk: Buffer) => {
            if (!body.take(chunk)) response.pause();
          });
          response.on('end', () => body.end());
          // A body cut short (the peer closed early) ends without 'end': keep what came, report it.
          response.on('close', () => {
            if (!response.complete) control.fail(closedEarly(url));
          });
          response.resume();
          return body.done;
        },
      });
    });
    request.end();
  });
}

/** Lowercase header names, repeated values joined with ', '. */
function joinHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const joined: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) joined[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return joined;
}
