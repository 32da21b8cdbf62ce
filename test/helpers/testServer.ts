/**
 * A loopback static file server for tests and benchmarks: real HTTP semantics (validators, ranges,
 * conditional requests) plus fault injection, so tests exercise failures without mocks or sleeps.
 *
 * Faults are queued per path and consumed in order: each request takes the first fault that still has
 * `times` left, and requests with no fault left are served normally.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface ServerOptions {
  /** Folder whose files are served; nothing outside it ever is. */
  root: string;
  /** Strong ETag from size and mtime, with If-None-Match => 304; 'weak': the same as a weak ETag (W/"..."). Default true. */
  etag?: boolean | 'weak';
  /** Honour `Range`. false behaves like python's http.server: Range is ignored and the answer is 200. Default true. */
  ranges?: boolean;
  /** Last-Modified, with If-Modified-Since => 304. Default true. */
  lastModified?: boolean;
  /** Serve https with this key and certificate (PEM) instead of http. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Loopback address to listen on. Default 127.0.0.1; another 127.x address is a host no proxy bypass covers. */
  host?: string;
  /** Port to listen on. Default 0: one the OS picks (tests); the examples serve on a fixed one. */
  port?: number;
}

export type Fault =
  /** Answer this status with a short text body (times: how many requests, default Infinity). */
  | { kind: 'status'; status: number; retryAfter?: string; times?: number }
  /** Answer a redirect to `location` (absolute, or relative to the request). Default status 302. */
  | { kind: 'redirect'; location: string; status?: 301 | 302 | 303 | 307 | 308; times?: number }
  /** Send the headers (full Content-Length) and this many body bytes, then close the connection. */
  | { kind: 'drop-after'; bytes: number; times?: number }
  /** Flip one byte in the middle of the body; the length is unchanged. */
  | { kind: 'corrupt'; times?: number }
  /** Send the headers, then never the body; the socket stays open until close(). */
  | { kind: 'hang'; times?: number }
  /** Send the headers and this many body bytes, then nothing more; the socket stays open until close(). */
  | { kind: 'hang-after'; bytes: number; times?: number }
  /** Append this many extra bytes to the body, without a Content-Length. */
  | { kind: 'extra-bytes'; bytes: number; times?: number }
  /** Send the headers, then `bytes` of the body every `intervalMs` (a slow-retrieval attack). */
  | { kind: 'trickle'; bytes: number; intervalMs: number; times?: number };

export interface RecordedRequest {
  method: string;
  /** The request target as sent, query included. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Status answered; 0 until the headers are sent. */
  status: number;
  /** Body bytes handed to the socket so far. */
  bytesSent: number;
}

export interface TestServer {
  /** 'http://127.0.0.1:PORT/' ('https://' with `tls`), always ending with '/'. */
  url: string;
  /** Every request, in arrival order. */
  requests: RecordedRequest[];
  /** Queues a fault for a decoded path such as '/manifest.json' or '/1.1.0/model.bin'. */
  fault(path: string, fault: Fault): void;
  clearFaults(): void;
  /** Stops listening and destroys every open socket, hanging ones included. Idempotent. */
  close(): Promise<void>;
}

/** Big reads keep the server from being the bottleneck of the download benchmark. */
const READ_HIGH_WATER_MARK = 1024 * 1024;

interface QueuedFault {
  fault: Fault;
  remaining: number;
}

/**
 * Starts the server on 127.0.0.1 with an OS-chosen port.
 *
 * @example
 * const server = await startTestServer({ root: dir });
 * server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 1024, times: 1 });
 * await fetch(new URL('1.0.0/model.bin', server.url));
 * await server.close();
 */
export async function startTestServer(options: ServerOptions): Promise<TestServer> {
  const config: Config = {
    root: path.resolve(options.root),
    etag: options.etag ?? true,
    ranges: options.ranges ?? true,
    lastModified: options.lastModified ?? true,
  };
  const faults = new Map<string, QueuedFault[]>();
  const sockets = new Set<Socket>();
  const requests: RecordedRequest[] = [];

  const takeFault = (urlPath: string): Fault | undefined => {
    const entry = faults.get(urlPath)?.find((queued) => queued.remaining > 0);
    if (entry === undefined) return undefined;
    entry.remaining -= 1;
    return entry.fault;
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const record: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, status: 0, bytesSent: 0 };
    requests.push(record);
    serve(config, takeFault, req, res, record).catch(() => {
      // The client went away mid-body, or the file vanished: nothing useful to answer any more.
      if (!res.headersSent) reply(res, record, 500, {}, 'internal error\n');
      else res.destroy();
    });
  };
  const server = options.tls === undefined ? http.createServer(handler) : https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler);
  // 'connection' carries the raw TCP socket for https too, so close() can destroy hanging TLS sessions.
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://${options.host ?? '127.0.0.1'}:${port}/`,
    requests,
    fault(urlPath, fault) {
      const queue = faults.get(urlPath) ?? [];
      queue.push({ fault, remaining: fault.times ?? Infinity });
      faults.set(urlPath, queue);
    },
    clearFaults() {
      faults.clear();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

type Config = Required<Omit<ServerOptions, 'tls' | 'host' | 'port'>>;

async function serve(
  config: Config,
  takeFault: (urlPath: string) => Fault | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
): Promise<void> {
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    reply(res, record, 405, { allow: 'GET, HEAD' }, 'only GET and HEAD\n');
    return;
  }
  const urlPath = decodePath(req.url ?? '/');
  if (urlPath === undefined) {
    reply(res, record, 400, {}, 'bad path\n');
    return;
  }
  const file = path.join(config.root, urlPath);
  if (!file.startsWith(config.root + path.sep)) {
    reply(res, record, 400, {}, 'bad path\n');
    return;
  }

  const fault = takeFault(urlPath);
  if (fault?.kind === 'status') {
    reply(res, record, fault.status, fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter }, `injected ${fault.status}\n`);
    return;
  }
  if (fault?.kind === 'redirect') {
    reply(res, record, fault.status ?? 302, { location: fault.location }, 'moved\n');
    return;
  }

  const stats = await stat(file, { bigint: true }).catch(() => undefined);
  if (stats === undefined || !stats.isFile()) {
    reply(res, record, 404, {}, 'not found\n');
    return;
  }
  const size = Number(stats.size);
  // Nanosecond mtime: a test that rewrites a file within the same second still gets a new ETag.
  const etag = `${config.etag === 'weak' ? 'W/' : ''}"${stats.size.toString(16)}-${stats.mtimeNs.toString(16)}"`;
  const modified = new Date(Number(stats.mtimeMs));
  const headers: OutgoingHttpHeaders = {
    'content-type': contentType(urlPath),
    'cache-control': 'no-cache',
  };
  if (config.etag) headers.etag = etag;
  if (config.lastModified) headers['last-modified'] = modified.toUTCString();
  if (config.ranges) headers['accept-ranges'] = 'bytes';

  if (notModified(config, req, etag, modified)) {
    reply(res, record, 304, headers);
    return;
  }

  let status = 200;
  let start = 0;
  let end = size - 1;
  const range = config.ranges && ifRangeHolds(config, req, etag, modified) ? parseRange(req.headers.range, size) : 'ignore';
  if (range === 'unsatisfiable') {
    reply(res, record, 416, { ...headers, 'content-range': `bytes */${size}` }, 'range not satisfiable\n');
    return;
  }
  if (range !== 'ignore') {
    status = 206;
    ({ start, end } = range);
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  const length = end - start + 1;
  if (fault?.kind !== 'extra-bytes') headers['content-length'] = length;

  writeHead(res, record, status, headers);
  if (method === 'HEAD') {
    res.end();
    return;
  }
  if (fault?.kind === 'trickle') {
    await trickle(res, record, file, start, end, fault.bytes, fault.intervalMs);
    return;
  }
  if (fault?.kind === 'hang') {
    res.flushHeaders();
    return;
  }
  if (fault?.kind === 'drop-after') {
    await dropAfter(res, record, file, start, Math.min(end, start + fault.bytes - 1));
    return;
  }
  if (fault?.kind === 'hang-after') {
    await dropAfter(res, record, file, start, Math.min(end, start + fault.bytes - 1), 'hang');
    return;
  }
  // start/end cannot describe an empty range; only an empty file has one here.
  const read = createReadStream(file, length === 0 ? {} : { start, end, highWaterMark: READ_HIGH_WATER_MARK });
  const middle = Math.floor(length / 2);
  const extra = fault?.kind === 'extra-bytes' ? fault.bytes : 0;
  const corrupt = fault?.kind === 'corrupt';
  await pipeline(
    read,
    async function* (source: AsyncIterable<Buffer>) {
      let offset = 0;
      for await (let chunk of source) {
        if (corrupt && middle >= offset && middle < offset + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[middle - offset] = (chunk[middle - offset] ?? 0) ^ 0xff;
        }
        offset += chunk.length;
        record.bytesSent += chunk.length;
        yield chunk;
      }
      if (extra > 0) {
        record.bytesSent += extra;
        yield Buffer.alloc(extra, 0x5a);
      }
    },
    res,
  );
}

/** Sends the range a few bytes at a time until it is done or the client goes away. */
async function trickle(res: ServerResponse, record: RecordedRequest, file: string, start: number, end: number, bytes: number, intervalMs: number): Promise<void> {
  res.flushHeaders();
  const { open } = await import('node:fs/promises');
  const handle = await open(file, 'r');
  try {
    for (let offset = start; offset <= end && !res.destroyed; offset += bytes) {
      const chunk = Buffer.alloc(Math.min(bytes, end - offset + 1));
      await handle.read(chunk, 0, chunk.length, offset);
      res.write(chunk);
      record.bytesSent += chunk.length;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    if (!res.destroyed) res.end();
  } finally {
    await handle.close();
  }
}

/** Sends bytes start..last of the file, then closes the connection before the promised length. */
async function dropAfter(res: ServerResponse, record: RecordedRequest, file: string, start: number, last: number, then: 'close' | 'hang' = 'close'): Promise<void> {
  res.flushHeaders();
  if (last >= start) {
    for await (const chunk of createReadStream(file, { start, end: last, highWaterMark: READ_HIGH_WATER_MARK })) {
      record.bytesSent += (chunk as Buffer).length;
      if (!res.write(chunk)) await drainOrClose(res);
      if (res.destroyed) return;
    }
  }
  if (then === 'hang') return;
  // end() on the socket, not destroy(): it flushes what was written first, so exactly `bytes` arrive.
  res.socket?.end();
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function writeHead(res: ServerResponse, record: RecordedRequest, status: number, headers: OutgoingHttpHeaders): void {
  res.writeHead(status, headers);
  record.status = status;
}

function reply(res: ServerResponse, record: RecordedRequest, status: number, headers: OutgoingHttpHeaders, body = ''): void {
  const bytes = Buffer.from(res.req.method === 'HEAD' ? '' : body);
  writeHead(res, record, status, { 'content-type': 'text/plain', 'cache-control': 'no-cache', ...headers, 'content-length': Buffer.byteLength(body) });
  record.bytesSent += bytes.length;
  res.end(bytes);
}

/** Model files are bytes; pages and scripts get their types so a browser test can load an app from the same origin. */
function contentType(urlPath: string): string {
  const types: Record<string, string> = { '.json': 'application/json', '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  return types[path.extname(urlPath)] ?? 'application/octet-stream';
}

/** The decoded path, or undefined when it is malformed or tries to climb out of the root. */
function decodePath(target: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(target.split('?')[0] ?? '');
  } catch {
    return undefined;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return undefined;
  if (decoded.split('/').includes('..')) return undefined;
  return decoded;
}

function notModified(config: Config, req: IncomingMessage, etag: string, modified: Date): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (!config.etag) return false;
    // If-None-Match uses the weak comparison.
    const bare = etag.replace(/^W\//, '');
    return ifNoneMatch.split(',').some((tag) => {
      const candidate = tag.trim();
      return candidate === '*' || candidate.replace(/^W\//, '') === bare;
    });
  }
  const since = req.headers['if-modified-since'];
  if (since === undefined || !config.lastModified) return false;
  const sinceMs = Date.parse(since);
  return !Number.isNaN(sinceMs) && Math.floor(modified.getTime() / 1000) * 1000 <= sinceMs;
}

/** If-Range: the range applies only when the validator is exactly current (strong comparison for ETags). */
function ifRangeHolds(config: Config, req: IncomingMessage, etag: string, modified: Date): boolean {
  const raw = req.headers['if-range'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return true;
  if (value.startsWith('"')) return config.etag !== false && value === etag;
  if (value.startsWith('W/')) return false;
  const date = Date.parse(value);
  return config.lastModified && !Number.isNaN(date) && date === Math.floor(modified.getTime() / 1000) * 1000;
}

/**
 * One byte range (`bytes=a-`, `bytes=a-b` or `bytes=-n`). Malformed or multi-range headers are ignored,
 * as RFC 9110 allows, and answered with the whole file.
 */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'ignore' | 'unsatisfiable' {
  if (header === undefined) return 'ignore';
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return 'ignore';
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return 'ignore';
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return 'ignore';
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}
