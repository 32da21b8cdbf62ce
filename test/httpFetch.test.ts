import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ky, { HTTPError } from 'ky';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { httpFetch } from '../src/node/httpFetch.js';
import { freePort } from './helpers/freePort.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

let tmp: string;
let server: TestServer;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-fetch-'));
  await writeFile(path.join(tmp, 'manifest.json'), JSON.stringify({ hello: 'world' }));
  server = await startTestServer({ root: tmp });
});

afterEach(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('httpFetch, the manifest transport on Node', () => {
  it('answers a GET with status, headers and a streamed body, and sends the request headers', async () => {
    const response = await httpFetch(`${server.url}manifest.json`, { headers: { authorization: 'Bearer t0ken' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toMatch(/^"/);
    expect(await response.json()).toEqual({ hello: 'world' });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer t0ken');
    expect(server.requests[0]?.headers['accept-encoding']).toBe('identity');
  });

  it('gives ky what it needs: a 304 with no body for an unchanged manifest, HTTPError for other statuses', async () => {
    const first = await ky.get(`${server.url}manifest.json`, { fetch: httpFetch });
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    const unchanged = await ky.get(`${server.url}manifest.json`, { fetch: httpFetch, headers: { 'if-none-match': etag }, throwHttpErrors: false });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body).toBeNull();

    server.fault('/manifest.json', { kind: 'status', status: 503, retryAfter: '7', times: 1 });
    const failure = await ky.get(`${server.url}manifest.json`, { fetch: httpFetch, retry: 0 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(HTTPError);
    expect((failure as HTTPError).response.headers.get('retry-after')).toBe('7');
  });

  it('does not follow redirects: the caller sees the 3xx and its Location', async () => {
    server.fault('/manifest.json', { kind: 'redirect', location: '/elsewhere.json', status: 301, times: 1 });
    const response = await httpFetch(`${server.url}manifest.json`, { redirect: 'manual' });
    expect(response.status).toBe(301);
    expect(response.headers.get('location')).toBe('/elsewhere.json');
    expect(server.requests).toHaveLength(1);
  });

  it('rejects like the global fetch when nothing listens: a TypeError whose cause is the socket error', async () => {
    const port = await freePort(); // nothing listens: connecting is refused
    const failure = await httpFetch(`http://127.0.0.1:${port}/manifest.json`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TypeError);
    expect((failure as TypeError).message).toContain('ECONNREFUSED');
    expect(((failure as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('an abort ends a request that has no answer yet, with the signal’s reason', async () => {
    server.fault('/manifest.json', { kind: 'hang' });
    const controller = new AbortController();
    const pending = httpFetch(`${server.url}manifest.json`, { signal: controller.signal });
    // The hang fault sends headers and no body: wait for them, then abort while the body is awaited.
    const response = await pending;
    const body = response.text();
    controller.abort();
    await expect(body).rejects.toThrow();

    const beforeHeaders = new AbortController();
    const silent = await silentServer();
    try {
      const request = httpFetch(`${silent.url}manifest.json`, { signal: beforeHeaders.signal });
      beforeHeaders.abort();
      await expect(request).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      await silent.close();
    }
  });

  it('refuses what the manifest never needs: other methods and other schemes', async () => {
    await expect(httpFetch(`${server.url}manifest.json`, { method: 'POST', body: 'x' })).rejects.toThrow(/only sends GET and HEAD/);
    await expect(httpFetch('data:text/plain,hi')).rejects.toThrow(/cannot fetch data: URLs/);
    expect(server.requests).toHaveLength(0);
  });
});

/** Accepts connections and never answers. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const silent = http.createServer(() => undefined);
  silent.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    },
  };
}
