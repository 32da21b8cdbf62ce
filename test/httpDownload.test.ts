import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpdateError, type UpdateErrorCode } from '../src/core/errors.js';
import { downloadFile, type DownloadFileOptions } from '../src/core/download/downloadFile.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { parseRetryAfter } from '../src/core/retryAfter.js';
import { startTestServer, type ServerOptions, type TestServer } from './helpers/testServer.js';
import { TEST_TLS } from './helpers/testTls.js';

const MIB = 1024 * 1024;
const SIZE = 4 * MIB + 123;
const FILE = '/1.0.0/model.bin';


let tmp: string;
let root: string;
let partPath: string;
let metaPath: string;
let staging: FileStagingArea;
const STAGED = { version: '1.0.0', path: 'model.bin' };
let content: Buffer;
const servers: TestServer[] = [];
const rawServers: net.Server[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-download-'));
  root = path.join(tmp, 'root');
  await mkdir(path.join(root, '1.0.0'), { recursive: true });
  staging = new FileStagingArea(tmp);
  partPath = staging.pathOf(STAGED);
  metaPath = staging.recordPathOf(STAGED);
  await mkdir(path.dirname(partPath), { recursive: true });
  content = randomBytes(SIZE);
  await writeFile(path.join(root, FILE), content);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await Promise.all(rawServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await rm(tmp, { recursive: true, force: true });
});

async function serve(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const server = await startTestServer({ root, ...options });
  servers.push(server);
  return server;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

type FetchOptions = Partial<DownloadFileOptions> & Pick<DownloadFileOptions, 'url' | 'expectedSize'> & { ca?: string | Buffer };

/** downloadFile() on Node: the Node transport (trusting `ca`) into the file staging area under tmp. */
function fetchFile({ ca, ...options }: FetchOptions) {
  return downloadFile({ file: STAGED, transport: createNodeTransport(ca === undefined ? {} : { ca }), staging, ...options });
}

function download(server: TestServer, extra: Partial<FetchOptions> = {}) {
  return fetchFile({ url: new URL(FILE.slice(1), server.url).href, expectedSize: SIZE, ...extra });
}

async function rejection(promise: Promise<unknown>, code: UpdateErrorCode): Promise<UpdateError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected UpdateError ${code}, but the download succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UpdateError);
  expect((error as UpdateError).code).toBe(code);
  return error as UpdateError;
}

/** Leaves a partial file of `bytes` bytes (and its resume record) the way an interrupted attempt does. */
async function interruptAfter(server: TestServer, bytes: number): Promise<void> {
  server.fault(FILE, { kind: 'drop-after', bytes, times: 1 });
  await rejection(download(server), 'NETWORK_UNAVAILABLE');
  expect((await stat(partPath)).size).toBe(bytes);
}

/**
 * A TCP server that answers each request with whatever `respond` writes, for responses node:http would
 * never produce (HTTP/1.0 close-delimited bodies, 1xx heads, garbage). Resolves to its base URL.
 */
async function rawServer(respond: (socket: net.Socket) => void): Promise<string> {
  const server = net.createServer((socket) => {
    let request = '';
    socket.on('data', (data: Buffer) => {
      request += data.toString('latin1');
      if (request.includes('\r\n\r\n')) {
        socket.removeAllListeners('data');
        respond(socket);
      }
    });
    socket.on('error', () => undefined);
  });
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

function lastRequest(server: TestServer) {
  const request = server.requests.at(-1);
  if (request === undefined) throw new Error('no request recorded');
  return request;
}

describe('downloadFile', () => {
  it('downloads the whole file, hashes it and reports every byte', async () => {
    const server = await serve();
    let reported = 0;
    const starts: number[] = [];
    const result = await download(server, { onBytes: (n) => (reported += n), onStart: (offset) => starts.push(offset) });

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: 0, bytesFetched: SIZE });
    expect((await readFile(partPath)).equals(content)).toBe(true);
    expect(reported).toBe(SIZE);
    expect(starts).toEqual([0]);
    expect(existsSync(metaPath)).toBe(false);
    expect(lastRequest(server).headers.range).toBeUndefined();
  });

  it('resumes after a dropped connection with Range and If-Range', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as { validator?: string };
    expect(meta.validator).toMatch(/^"/);

    const starts: number[] = [];
    const result = await download(server, { onStart: (offset) => starts.push(offset) });

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: MIB, bytesFetched: SIZE - MIB });
    expect(starts).toEqual([MIB]);
    const resume = lastRequest(server);
    expect(resume.headers.range).toBe(`bytes=${MIB}-`);
    expect(resume.headers['if-range']).toBe(meta.validator);
    expect(resume.status).toBe(206);
    expect(resume.bytesSent).toBe(SIZE - MIB);
    expect(existsSync(metaPath)).toBe(false);
  });

  it('resumes with Last-Modified as the validator when there is no ETag', async () => {
    const server = await serve({ etag: false });
    await interruptAfter(server, MIB);

    const result = await download(server);

    expect(result.resumedFrom).toBe(MIB);
    expect(result.sha256).toBe(sha256(content));
    expect(lastRequest(server).headers['if-range']).toMatch(/GMT$/);
    expect(lastRequest(server).status).toBe(206);
  });

  it('resumes with a bare Range when the earlier attempt left no resume record', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    await rm(metaPath);

    const result = await download(server);

    expect(result.resumedFrom).toBe(MIB);
    expect(result.sha256).toBe(sha256(content));
    expect(lastRequest(server).headers.range).toBe(`bytes=${MIB}-`);
    expect(lastRequest(server).headers['if-range']).toBeUndefined();
  });

  it('starts over cleanly when the server ignores Range (200)', async () => {
    const server = await serve({ ranges: false });
    await interruptAfter(server, MIB);

    const starts: number[] = [];
    const result = await download(server, { onStart: (offset) => starts.push(offset) });

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: 0, bytesFetched: SIZE });
    expect(starts).toEqual([0]);
    expect(lastRequest(server).headers.range).toBe(`bytes=${MIB}-`);
    expect(lastRequest(server).status).toBe(200);
    expect((await readFile(partPath)).equals(content)).toBe(true);
  });

  it('starts over with the new file when it changed between attempts (If-Range fails)', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    const changed = randomBytes(SIZE);
    const file = path.join(root, FILE);
    await writeFile(file, changed);
    // A different mtime, so the ETag changes even on file systems with coarse timestamps.
    const later = new Date(Date.now() + 60_000);
    await utimes(file, later, later);

    const result = await download(server);

    expect(result).toEqual({ size: SIZE, sha256: sha256(changed), resumedFrom: 0, bytesFetched: SIZE });
    expect(lastRequest(server).headers['if-range']).toBeDefined();
    expect(lastRequest(server).status).toBe(200);
  });

  it('starts over once after a 416', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    server.fault(FILE, { kind: 'status', status: 416, times: 1 });

    const result = await download(server);

    expect(result.resumedFrom).toBe(0);
    expect(result.sha256).toBe(sha256(content));
    const [refused, fresh] = server.requests.slice(-2);
    expect(refused?.status).toBe(416);
    expect(refused?.headers.range).toBe(`bytes=${MIB}-`);
    expect(fresh?.status).toBe(200);
    expect(fresh?.headers.range).toBeUndefined();
  });

  it('gives up with DOWNLOAD_FAILED when the range is refused again after starting over', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    server.fault(FILE, { kind: 'status', status: 416, times: 2 });

    // The second 416 answers a request without Range: nothing left to restart.
    await rejection(download(server), 'DOWNLOAD_FAILED');
    expect(server.requests.slice(-2).map((r) => r.status)).toEqual([416, 416]);
  });

  it('returns without a request when the partial file is already complete', async () => {
    const server = await serve();
    await writeFile(partPath, content);

    const result = await download(server);

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: SIZE, bytesFetched: 0 });
    expect(server.requests).toHaveLength(0);
  });

  it('downloads an empty file', async () => {
    const server = await serve();
    await writeFile(path.join(root, 'empty.bin'), '');

    const result = await fetchFile({ url: `${server.url}empty.bin`, expectedSize: 0 });

    expect(result).toEqual({ size: 0, sha256: sha256(Buffer.alloc(0)), resumedFrom: 0, bytesFetched: 0 });
    expect((await stat(partPath)).size).toBe(0);
  });

  it('starts over when the partial file is longer than the expected size', async () => {
    const server = await serve();
    await writeFile(partPath, randomBytes(SIZE + 10));

    const result = await download(server);

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: 0, bytesFetched: SIZE });
    expect(lastRequest(server).headers.range).toBeUndefined();
  });

  it('hashes the bytes that arrived, so a corrupted body yields a different hash', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'corrupt', times: 1 });

    const result = await download(server);

    expect(result.size).toBe(SIZE);
    expect(result.sha256).not.toBe(sha256(content));
    expect(result.sha256).toBe(sha256(await readFile(partPath)));
  });

  it('maps 503 with Retry-After in seconds to SERVICE_UNAVAILABLE', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'status', status: 503, retryAfter: '7' });

    const error = await rejection(download(server), 'SERVICE_UNAVAILABLE');

    expect(error.retryAfterMs).toBe(7000);
    expect(error.transient).toBe(true);
    expect(error.message).toContain('503');
  });

  it('maps 429 with an HTTP-date Retry-After to SERVICE_UNAVAILABLE', async () => {
    const server = await serve();
    const at = new Date(Date.now() + 120_000);
    server.fault(FILE, { kind: 'status', status: 429, retryAfter: at.toUTCString() });

    const error = await rejection(download(server), 'SERVICE_UNAVAILABLE');

    expect(error.retryAfterMs).toBeGreaterThan(100_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it('maps 404 to DOWNLOAD_FAILED, which is not transient', async () => {
    const server = await serve();
    const error = await rejection(fetchFile({ url: `${server.url}missing.bin`, expectedSize: SIZE }), 'DOWNLOAD_FAILED');

    expect(error.transient).toBe(false);
    expect(error.message).toContain('404');
  });

  it('fails with SIZE_MISMATCH at the first extra byte and deletes the partial file', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'extra-bytes', bytes: 10 });

    await rejection(download(server), 'SIZE_MISMATCH');

    expect(existsSync(partPath)).toBe(false);
    expect(existsSync(metaPath)).toBe(false);
  });

  it('fails with SIZE_MISMATCH before the body when the server announces another size', async () => {
    const server = await serve();
    let reported = 0;

    await rejection(download(server, { expectedSize: SIZE - 1, onBytes: (n) => (reported += n) }), 'SIZE_MISMATCH');
    await rejection(download(server, { expectedSize: SIZE + 1 }), 'SIZE_MISMATCH');

    expect(reported).toBe(0);
    expect(existsSync(partPath)).toBe(false);
  });

  it('reports a body that ends early as NETWORK_UNAVAILABLE and keeps what arrived', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'drop-after', bytes: 3 * MIB + 7, times: 1 });

    const error = await rejection(download(server), 'NETWORK_UNAVAILABLE');

    expect(error.transient).toBe(true);
    expect((await readFile(partPath)).equals(content.subarray(0, 3 * MIB + 7))).toBe(true);
  });

  it('maps a refused connection to NETWORK_UNAVAILABLE', async () => {
    const server = await startTestServer({ root });
    await server.close();

    await rejection(download(server), 'NETWORK_UNAVAILABLE');
  });

  it('cancels on abort while the server hangs, keeping the partial file', async () => {
    const server = await serve();
    await interruptAfter(server, MIB);
    server.fault(FILE, { kind: 'hang', times: 1 });
    const controller = new AbortController();

    // onStart runs once the hanging response's headers are in: abort from outside the download's own turn.
    const pending = download(server, { signal: controller.signal, onStart: () => setImmediate(() => controller.abort()) });

    await rejection(pending, 'CANCELLED');
    expect(lastRequest(server).status).toBe(206);
    expect(lastRequest(server).bytesSent).toBe(0);
    expect((await readFile(partPath)).equals(content.subarray(0, MIB))).toBe(true);
    expect(existsSync(metaPath)).toBe(true);
  });

  it('rejects with CANCELLED without a request when the signal is already aborted', async () => {
    const server = await serve();

    await rejection(download(server, { signal: AbortSignal.abort() }), 'CANCELLED');
    expect(server.requests).toHaveLength(0);
  });

  it('fails with DOWNLOAD_STALLED when no byte arrives within stallTimeoutMs', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'hang', times: 1 });

    const error = await rejection(download(server, { limits: { stallTimeoutMs: 200 } }), 'DOWNLOAD_STALLED');

    expect(error.transient).toBe(true);
    expect(lastRequest(server).status).toBe(200);
  });

  it('follows a redirect on the same server', async () => {
    const server = await serve();
    server.fault('/latest/model.bin', { kind: 'redirect', location: FILE, status: 307 });

    const result = await fetchFile({ url: `${server.url}latest/model.bin`, expectedSize: SIZE });

    expect(result.sha256).toBe(sha256(content));
    expect(server.requests.map((r) => [r.path, r.status])).toEqual([
      ['/latest/model.bin', 307],
      [FILE, 200],
    ]);
  });

  it('drops Authorization and Cookie when a redirect leaves the origin', async () => {
    const origin = await serve();
    const mirror = await serve();
    origin.fault('/model.bin', { kind: 'redirect', location: new URL(FILE.slice(1), mirror.url).href });
    const headers = { Authorization: 'Bearer secret', Cookie: 'session=1', 'X-Client': 'tests' };

    const result = await fetchFile({ url: `${origin.url}model.bin`, expectedSize: SIZE, headers });

    expect(result.sha256).toBe(sha256(content));
    expect(lastRequest(origin).headers.authorization).toBe('Bearer secret');
    const followed = lastRequest(mirror).headers;
    expect(followed.authorization).toBeUndefined();
    expect(followed.cookie).toBeUndefined();
    expect(followed['x-client']).toBe('tests');
  });

  it('stops after 5 redirects with DOWNLOAD_FAILED', async () => {
    const server = await serve();
    server.fault('/loop', { kind: 'redirect', location: '/loop' });

    await rejection(fetchFile({ url: `${server.url}loop`, expectedSize: SIZE }), 'DOWNLOAD_FAILED');
    expect(server.requests).toHaveLength(6);
  });

  it('downloads over https, trusting an extra CA', async () => {
    const server = await serve({ tls: TEST_TLS });
    const big = randomBytes(24 * MIB + 5);
    await writeFile(path.join(root, 'big.bin'), big);

    const result = await fetchFile({ url: `${server.url}big.bin`, expectedSize: big.length, ca: TEST_TLS.cert });

    expect(server.url).toMatch(/^https:/);
    expect(result.sha256).toBe(sha256(big));
    expect((await readFile(partPath)).equals(big)).toBe(true);
  });

  it('resumes over https', async () => {
    const server = await serve({ tls: TEST_TLS });
    server.fault(FILE, { kind: 'drop-after', bytes: MIB, times: 1 });
    await rejection(download(server, { ca: TEST_TLS.cert }), 'NETWORK_UNAVAILABLE');

    const result = await download(server, { ca: TEST_TLS.cert });

    expect(result.resumedFrom).toBe(MIB);
    expect(result.sha256).toBe(sha256(content));
    expect(lastRequest(server).status).toBe(206);
  });

  it('refuses an untrusted certificate with DOWNLOAD_FAILED', async () => {
    const server = await serve({ tls: TEST_TLS });

    const error = await rejection(download(server), 'DOWNLOAD_FAILED');

    expect(error.transient).toBe(false);
    expect(server.requests).toHaveLength(0);
  });

  it('reads an HTTP/1.0 body that ends when the connection closes', async () => {
    const url = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n'), content])));

    const result = await fetchFile({ url: `${url}model.bin`, expectedSize: SIZE });

    expect(result.sha256).toBe(sha256(content));
  });

  it('skips 1xx heads and reads a chunked body with extensions and trailers', async () => {
    const half = Math.floor(SIZE / 2);
    const url = await rawServer((socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      socket.write(`${half.toString(16)};name=value\r\n`);
      socket.write(content.subarray(0, half));
      socket.write(`\r\n${(SIZE - half).toString(16)}\r\n`);
      socket.write(content.subarray(half));
      socket.end('\r\n0\r\nX-Checksum: none\r\n\r\n');
    });

    const result = await fetchFile({ url: `${url}model.bin`, expectedSize: SIZE });

    expect(result.sha256).toBe(sha256(content));
  });

  it('rejects a response that is not HTTP with DOWNLOAD_FAILED', async () => {
    const url = await rawServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'));

    const error = await rejection(fetchFile({ url: `${url}model.bin`, expectedSize: SIZE }), 'DOWNLOAD_FAILED');
    expect(error.message).toContain('malformed');
  });

  it('maps a connection closed before any answer to NETWORK_UNAVAILABLE', async () => {
    const url = await rawServer((socket) => socket.destroy());

    await rejection(fetchFile({ url: `${url}model.bin`, expectedSize: SIZE }), 'NETWORK_UNAVAILABLE');
  });

  it('never writes through a symbolic link put in place of the staging file or its resume record', async () => {
    const server = await serve();
    const outside = path.join(tmp, 'outside.txt');
    await writeFile(outside, 'precious');
    await symlink(outside, partPath);
    expect((await rejection(download(server), 'STORAGE_FAILED')).message).toContain('symbolic link');
    await rm(partPath);
    await rm(metaPath, { force: true });
    await mkdir(path.dirname(metaPath), { recursive: true });
    await symlink(outside, metaPath);
    expect((await rejection(download(server), 'STORAGE_FAILED')).message).toContain('symbolic link');
    expect(await readFile(outside, 'utf8')).toBe('precious');
  });

  it('sends URL credentials as Basic auth and refuses header injection', async () => {
    const server = await serve();
    const url = new URL(FILE.slice(1), server.url);
    url.username = 'reader';
    url.password = 's3cret';

    await fetchFile({ url: url.href, expectedSize: SIZE });
    await rejection(download(server, { headers: { 'X-Evil': 'a\r\nHost: elsewhere' } }), 'INVALID_ARGUMENT');

    expect(lastRequest(server).headers.authorization).toBe(`Basic ${Buffer.from('reader:s3cret').toString('base64')}`);
  });

  it('rejects URLs it cannot fetch with INVALID_ARGUMENT', async () => {
    await rejection(fetchFile({ url: 'model.bin', expectedSize: 1 }), 'INVALID_ARGUMENT');
    await rejection(fetchFile({ url: 'ftp://127.0.0.1/model.bin', expectedSize: 1 }), 'INVALID_ARGUMENT');
    await rejection(fetchFile({ url: 'http://127.0.0.1/model.bin', expectedSize: -1 }), 'INVALID_ARGUMENT');
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP-dates, and ignores garbage', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('startTestServer', () => {
  function get(server: TestServer, target: string, headers: Record<string, string> = {}, method = 'GET') {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = http.request(new URL(server.url), { method, path: target, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('refuses paths that climb out of the root', async () => {
    await writeFile(path.join(tmp, 'secret.txt'), 'secret');
    const server = await serve();

    const climbing = await get(server, '/%2e%2e/secret.txt');
    const encodedSlash = await get(server, '/1.0.0/..%2f..%2fsecret.txt');

    expect(climbing.status).toBe(400);
    expect(encodedSlash.status).toBe(400);
    expect(climbing.body.toString()).not.toContain('secret');
  });

  it('answers ranges, If-None-Match and HEAD like a real static server', async () => {
    const server = await serve();

    const full = await get(server, FILE);
    const etag = String(full.headers.etag);
    const range = await get(server, FILE, { range: 'bytes=10-19' });
    const suffix = await get(server, FILE, { range: 'bytes=-5' });
    const unsatisfiable = await get(server, FILE, { range: `bytes=${SIZE}-` });
    const staleIfRange = await get(server, FILE, { range: 'bytes=10-19', 'if-range': '"stale"' });
    const notModified = await get(server, FILE, { 'if-none-match': etag });
    const head = await get(server, FILE, {}, 'HEAD');
    const missing = await get(server, '/nope.bin');

    expect(full.status).toBe(200);
    expect(full.body.equals(content)).toBe(true);
    expect(full.headers['cache-control']).toBe('no-cache');
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 10-19/${SIZE}`);
    expect(range.body.equals(content.subarray(10, 20))).toBe(true);
    expect(suffix.body.equals(content.subarray(SIZE - 5))).toBe(true);
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers['content-range']).toBe(`bytes */${SIZE}`);
    expect(staleIfRange.status).toBe(200);
    expect(notModified.status).toBe(304);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(SIZE));
    expect(head.body.length).toBe(0);
    expect(missing.status).toBe(404);
    expect(server.requests.map((r) => r.status)).toEqual([200, 206, 206, 416, 200, 304, 200, 404]);
  });

  it('consumes faults in order and then serves normally', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'status', status: 500, times: 1 });
    server.fault(FILE, { kind: 'status', status: 502, times: 1 });

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(server, FILE)).status);

    expect(statuses).toEqual([500, 502, 200]);
  });
});
