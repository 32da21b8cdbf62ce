/**
 * The general transport for one GET: node:http / node:https, which handle every form of response
 * (chunked and close-delimited bodies, interim responses, lenient heads). The Node transport uses it
 * when the direct exchange declines a response (directHttpExchange.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { closedEarly, ExchangeControl, type Exchange, type ExchangeOptions } from './exchange.js';
import { connectExchange, proxyRefusal } from './proxy.js';

/**
 * Sends the GET and resolves once the response head is in, with the body paused so the caller can
 * decide what to do with it. Rejects if no head arrives.
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
    const control = new ExchangeControl(options, () => request.destroy(), rejectHead);
    request.on('error', (error) => control.fail(error));
    request.on('response', (response) => {
      const refusal = proxyRefusal(proxied, url, response.statusCode ?? 0);
      if (refusal !== undefined) return control.fail(refusal);
      response.pause();
      // Until receive() is called, the body waits; an abort still ends the exchange.
      response.on('error', (error) => control.fail(error));
      resolveHead({
        status: response.statusCode ?? 0,
        statusText: response.statusMessage ?? '',
        headers: joinHeaders(response.headers),
        close: () => control.close(),
        resume: () => response.resume(),
        receive: (sink) =>
          new Promise<void>((resolve, reject) => {
            control.waitWith(reject);
            if (control.failure) return;
            response.on('data', (chunk: Buffer) => {
              if (!sink.write(chunk)) response.pause();
            });
            response.on('end', () => {
              control.settle();
              resolve();
            });
            // A body cut short (the peer closed early) ends without 'end'.
            response.on('close', () => {
              if (!response.complete) control.fail(closedEarly());
            });
            response.resume();
          }),
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
