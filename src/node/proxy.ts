/**
 * Proxies on Node, for the manifest (httpFetch.ts) and the model files (directHttpExchange.ts,
 * nodeHttpExchange.ts): which proxy a request goes through, and the connection through it.
 *
 * Which proxy: the `proxy` option when it is given (a URL used instead of the environment, or false to
 * ignore the environment), else the environment as curl reads it: HTTPS_PROXY for https, HTTP_PROXY for
 * http, ALL_PROXY for both, each lower-case name before its upper-case one, except for the hosts NO_PROXY
 * lists (host suffixes, `*`, ports, IP literals: proxy-from-env decides, as it does for axios). Every
 * request decides for its own URL, so a redirect to another origin decides again.
 *
 * The connection: for https a CONNECT tunnel through the proxy, then TLS with the origin inside it (SNI
 * and the certificate checked against the origin's name, extra CAs trusted as without a proxy); for http
 * the proxy itself, sent the request in absolute form. Credentials in the proxy URL
 * (`http://user:pass@proxy:3128`) become Proxy-Authorization, which only the proxy sees.
 *
 * Never silently direct: a proxy that is down, refuses the tunnel or does not answer fails the request
 * with NETWORK_UNAVAILABLE, naming the proxy and the setting it came from.
 */
import net from 'node:net';
import tls from 'node:tls';
import { getProxyForUrl } from 'proxy-from-env';
import { UpdateError } from '../core/errors.js';
import type { ExchangeOptions } from './exchange.js';
import { headEnd, MAX_HEAD_BYTES } from './responseHead.js';

/**
 * The `proxy` option: a proxy URL used instead of the environment (`http://user:pass@proxy:3128`),
 * false to ignore the environment and always connect directly, undefined to follow the environment.
 */
/** How long a proxy may take to accept a connection or open a tunnel: inside the download's 30 s head deadline, so the error names the proxy. */
export const PROXY_CONNECT_TIMEOUT_MS = 20_000;

export type ProxySetting = string | false | undefined;

/** The proxy one request goes through. */
export interface Proxy {
  /** An http: URL, possibly with credentials. */
  url: URL;
  /** The setting it came from, for messages: 'HTTPS_PROXY', 'http_proxy', 'the proxy option'. */
  source: string;
}

/** A connection through a proxy, ready for one request. */
export interface ProxiedConnection {
  /** Connected to the proxy (http), or TLS with the origin inside the proxy's tunnel (https). */
  socket: net.Socket;
  /** The request line's target: the absolute URL when the proxy gets the request (http), else the path. */
  target: string;
  /** Headers the request adds: Proxy-Authorization when the proxy gets the request and has credentials. */
  headers: Record<string, string>;
  /** The proxy when it gets the request itself (http), so its answers are its own; undefined inside a tunnel. */
  forwarder: Proxy | undefined;
}

export interface ProxyConnectOptions {
  proxy: ProxySetting;
  /** Aborting rejects with the signal's reason and drops the connection. */
  signal?: AbortSignal | undefined;
  /** How long the proxy may take to accept the connection and answer the CONNECT. */
  timeoutMs: number;
  /** The CAs to trust for the origin's certificate inside a tunnel (Node's roots when undefined). */
  ca?: Array<string | Buffer> | undefined;
}

const OPTION_SOURCE = 'the proxy option';

/**
 * The proxy a request to `url` goes through, or undefined when it goes direct. Throws INVALID_ARGUMENT
 * for a proxy setting that is not an http:// URL.
 *
 * @example
 * proxyFor(new URL('https://models.example.com/manifest.json'), undefined)
 * // with HTTPS_PROXY=http://proxy:3128: { url: URL('http://proxy:3128'), source: 'HTTPS_PROXY' }
 */
export function proxyFor(url: URL, setting: ProxySetting): Proxy | undefined {
  if (setting === false) return undefined;
  if (setting !== undefined) return { url: parseProxyUrl(setting, OPTION_SOURCE), source: OPTION_SOURCE };
  const scheme = url.protocol.slice(0, -1);
  // proxy-from-env's order: <scheme>_proxy, then all_proxy, each lower-case first; an empty value is unset.
  const source = [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`, 'all_proxy', 'ALL_PROXY'].find((name) => process.env[name]);
  if (source === undefined) return undefined;
  // proxy-from-env reads the same variables, so '' here means NO_PROXY lists this host.
  if (getProxyForUrl(url.href) === '') return undefined;
  return { url: parseProxyUrl(process.env[source]!, source), source };
}

/**
 * Throws INVALID_ARGUMENT when the proxy option is set to something that is not an http:// proxy URL.
 *
 * @example
 * assertProxySetting('socks5://proxy:1080') // throws: only http:// proxies are supported
 */
export function assertProxySetting(setting: ProxySetting): void {
  if (typeof setting === 'string') parseProxyUrl(setting, OPTION_SOURCE);
}

/**
 * Opens the connection a request to `url` travels on when a proxy is set; undefined (at once, so a
 * direct request starts in the same tick) when it goes direct. Resolves once the proxy accepted the
 * connection (http) or opened the tunnel (https: TLS with the origin starts then, and its failures are
 * the origin's). Rejects with UpdateError NETWORK_UNAVAILABLE naming the proxy when the proxy is down,
 * refuses or does not answer in time; with the signal's reason on abort.
 *
 * @example
 * const connecting = connectThroughProxy(url, { proxy: undefined, timeoutMs: 30_000 });
 * const proxied = connecting && (await connecting);
 * const request = https.request(url, proxied ? { createConnection: () => proxied.socket, path: proxied.target } : {});
 */
export function connectThroughProxy(url: URL, options: ProxyConnectOptions): Promise<ProxiedConnection> | undefined {
  const proxy = proxyFor(url, options.proxy);
  return proxy === undefined ? undefined : openConnection(proxy, url, options);
}

async function openConnection(proxy: Proxy, url: URL, options: ProxyConnectOptions): Promise<ProxiedConnection> {
  options.signal?.throwIfAborted();
  const authorization = proxyAuthorization(proxy.url);
  if (url.protocol === 'http:') {
    const socket = await reachProxy(proxy, url, options, undefined);
    if (options.signal?.aborted) throw dropped(socket, options.signal);
    const target = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
    return { socket, target, headers: authorization === undefined ? {} : { 'proxy-authorization': authorization }, forwarder: proxy };
  }
  const authority = `${url.hostname}:${url.port || 443}`;
  const connect = [`CONNECT ${authority} HTTP/1.1`, `host: ${authority}`, ...(authorization === undefined ? [] : [`proxy-authorization: ${authorization}`]), '', ''];
  const tunnel = await reachProxy(proxy, url, options, connect.join('\r\n'));
  if (options.signal?.aborted) throw dropped(tunnel, options.signal);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const socket = tls.connect({
    socket: tunnel,
    // The certificate is checked against `host`; without it, Node would check it against the proxy's name.
    host: hostname,
    ...(net.isIP(hostname) ? {} : { servername: hostname }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ALPNProtocols: ['http/1.1'],
  });
  return { socket, target: `${url.pathname}${url.search}`, headers: {}, forwarder: undefined };
}

/**
 * The error for a response the proxy answered in the origin's place: a 407 to a plain http request
 * (the proxy wants credentials). Undefined for any other response, which the caller reads as usual.
 *
 * @example
 * const refusal = proxyRefusal(proxied, url, response.statusCode); if (refusal) throw refusal;
 */
export function proxyRefusal(proxied: ProxiedConnection | undefined, url: URL, status: number): UpdateError | undefined {
  const proxy = proxied?.forwarder;
  return proxy !== undefined && status === 407 ? proxyFailure(proxy, url, credentialsWanted(proxy, '407')) : undefined;
}

/**
 * connectThroughProxy for one exchange of a download. The download's head deadline aborts the signal,
 * which ends a proxy that does not answer; PROXY_CONNECT_TIMEOUT_MS bounds it when no deadline is set.
 * An abort rejects with the signal's reason, as every other exchange failure after an abort does.
 */
export function connectExchange(url: URL, options: ExchangeOptions): Promise<ProxiedConnection> | undefined {
  const connecting = connectThroughProxy(url, { proxy: options.proxy, signal: options.signal, timeoutMs: PROXY_CONNECT_TIMEOUT_MS, ca: options.ca });
  return connecting?.catch((error: unknown) => {
    throw options.signal.aborted ? options.signal.reason : error;
  });
}

/** An abort that came while the connection was being handed over: the caller's listener missed it. */
function dropped(socket: net.Socket, signal: AbortSignal): unknown {
  socket.destroy();
  return signal.reason;
}

/** Connects to the proxy and, given a CONNECT request, waits for the proxy to open the tunnel. */
function reachProxy(proxy: Proxy, url: URL, options: ProxyConnectOptions, connect: string | undefined): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const host = proxy.url.hostname.startsWith('[') ? proxy.url.hostname.slice(1, -1) : proxy.url.hostname;
    const socket = net.connect({ host, port: Number(proxy.url.port || 80) });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(`it did not answer within ${options.timeoutMs} ms`), options.timeoutMs);
    const onAbort = (): void => settle(options.signal!.reason);
    const onError = (error: Error): void => fail(`connecting to it failed (${error.message})`);
    const onClose = (): void => fail('it closed the connection without answering');
    const onData = (bytes: Buffer): void => {
      head = Buffer.concat([head, bytes]);
      const end = headEnd(head);
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) fail('its answer to CONNECT is not HTTP');
        return;
      }
      const status = /^HTTP\/1\.[01] (\d\d\d)(?: ([^\r\n]*))?\r\n/.exec(head.toString('latin1', 0, end));
      if (status === null) return fail('its answer to CONNECT is not HTTP');
      const code = Number(status[1]);
      const answered = `${code}${status[2] ? ` ${status[2]}` : ''}`;
      if (code === 407) return fail(credentialsWanted(proxy, answered));
      if (code < 200 || code > 299) return fail(`it refused the tunnel to ${url.host} (${answered})`);
      // Nothing may come before TLS starts: the origin has not been sent a byte yet.
      if (end < head.length) return fail('it sent data before the tunnel was open');
      socket.pause();
      settle();
    };

    const settle = (error?: unknown): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError).off('close', onClose).off('end', onClose).off('data', onData);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const fail = (what: string): void => settle(proxyFailure(proxy, url, what));

    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError).on('close', onClose).on('end', onClose);
    socket.once('connect', () => {
      if (connect === undefined) return settle();
      socket.on('data', onData);
      socket.write(connect, 'latin1');
    });
  });
}

/** A proxy URL from a setting: http:// only (https still travels encrypted, in a CONNECT tunnel). */
function parseProxyUrl(value: string, source: string): URL {
  // A bare host:port means http://host:port, as curl reads it.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidProxy(source, 'is not a URL');
  }
  if (url.protocol !== 'http:') throw invalidProxy(source, `names a ${url.protocol}// proxy; only http:// proxies are supported (https requests still travel encrypted through them)`);
  if (url.hostname === '') throw invalidProxy(source, 'has no host');
  return url;
}

function invalidProxy(source: string, what: string): UpdateError {
  const fix = source === OPTION_SOURCE ? 'pass http://host:port, or false to connect directly' : `set it to http://host:port, or pass the proxy option (false connects directly)`;
  return new UpdateError('INVALID_ARGUMENT', `${source === OPTION_SOURCE ? 'The proxy option' : source} ${what}: ${fix}.`);
}

function credentialsWanted(proxy: Proxy, answered: string): string {
  return proxy.url.username === '' && proxy.url.password === ''
    ? `it wants credentials (${answered}): put them in the proxy URL, http://user:password@host:port`
    : `it refused the credentials in the proxy URL (${answered})`;
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (proxy.username === '' && proxy.password === '') return undefined;
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/** The proxy as messages show it: no credentials. */
function describeProxy(proxy: Proxy): string {
  return `${proxy.url.protocol}//${proxy.url.host}`;
}

function proxyFailure(proxy: Proxy, url: URL, what: string): UpdateError {
  const setting = proxy.source === OPTION_SOURCE ? 'the proxy option (--proxy)' : `${proxy.source} (or NO_PROXY, or the proxy option)`;
  return new UpdateError(
    'NETWORK_UNAVAILABLE',
    `Could not reach ${url.host} through the proxy ${describeProxy(proxy)} (from ${proxy.source}): ${what}. Check ${setting}; nothing was sent directly, and the next attempt tries the proxy again.`,
  );
}
