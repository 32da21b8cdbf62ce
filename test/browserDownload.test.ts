/**
 * The browser's download path: the fetch transport into IndexedDB staging (fake-indexeddb), through the
 * one download algorithm, against the real loopback server. It resumes, restarts and refuses exactly
 * as the Node path does (test/httpDownload.test.ts).
 */
import 'fake-indexeddb/auto';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchTransport } from '../src/browser/fetchTransport.js';
import { openDatabases } from '../src/browser/idbLayout.js';
import { IdbStagingArea, readStagedChunks } from '../src/browser/idbStagingArea.js';
import { downloadFile, type DownloadFileOptions } from '../src/core/download/downloadFile.js';
import type { UpdateError } from '../src/core/errors.js';
import { startTestServer, type ServerOptions, type TestServer } from './helpers/testServer.js';

const KIB = 1024;
const SIZE = 600 * KIB + 17;
const FILE = '/1.0.0/model.bin';
const STAGED = { version: '1.0.0', path: 'model.bin' };

let tmp: string;
let content: Buffer;
let staging: IdbStagingArea;
let files: ReturnType<typeof openDatabases>['files'];
const servers: TestServer[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-browser-download-'));
  await mkdir(path.join(tmp, '1.0.0'));
  content = randomBytes(SIZE);
  await writeFile(path.join(tmp, FILE), content);
  files = openDatabases(randomUUID()).files;
  staging = new IdbStagingArea(files, { chunkBytes: 64 * KIB });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await rm(tmp, { recursive: true, force: true });
});

async function serve(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const server = await startTestServer({ root: tmp, ...options });
  servers.push(server);
  return server;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function download(server: TestServer, extra: Partial<DownloadFileOptions> = {}) {
  return downloadFile({ url: new URL(FILE.slice(1), server.url).href, file: STAGED, expectedSize: SIZE, transport: fetchTransport(), staging, ...extra });
}

async function staged(): Promise<Buffer> {
  const chunks = await readStagedChunks(files, STAGED.version, STAGED.path);
  return Buffer.concat(await Promise.all(chunks.map(async (chunk) => Buffer.from(await chunk.blob.arrayBuffer()))));
}

/** An attempt whose connection drops after `bytes`: what it persisted stays for the next one. */
async function interruptAfter(server: TestServer, bytes: number): Promise<number> {
  server.fault(FILE, { kind: 'drop-after', bytes, times: 1 });
  await expect(download(server)).rejects.toMatchObject({ code: 'NETWORK_UNAVAILABLE' });
  const kept = await staging.size(STAGED);
  expect(kept).toBeGreaterThan(0);
  return kept;
}

describe('downloadFile in the browser (fetch + IndexedDB)', () => {
  it('resumes from the persisted chunks with Range and a strong If-Range, without hashing the prefix again', async () => {
    const server = await serve();
    const kept = await interruptAfter(server, 300 * KIB);

    const result = await download(server);

    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: kept, bytesFetched: SIZE - kept });
    const resume = server.requests.at(-1)!;
    expect(resume.headers.range).toBe(`bytes=${kept}-`);
    expect(resume.headers['if-range']).toMatch(/^"/);
    expect(resume.status).toBe(206);
    expect((await staged()).equals(content)).toBe(true);
  });

  it('never sends a weak ETag in If-Range: it resumes on Last-Modified instead of starting over', async () => {
    const server = await serve({ etag: 'weak' });
    const kept = await interruptAfter(server, 300 * KIB);

    const result = await download(server);

    const resume = server.requests.at(-1)!;
    expect(resume.headers.range).toBe(`bytes=${kept}-`);
    expect(resume.headers['if-range']).toMatch(/GMT$/);
    expect(resume.status).toBe(206);
    expect(result).toMatchObject({ resumedFrom: kept, sha256: sha256(content) });
  });

  it('starts over once after a 416, as on Node', async () => {
    const server = await serve();
    const kept = await interruptAfter(server, 300 * KIB);
    server.fault(FILE, { kind: 'status', status: 416, times: 1 });

    const result = await download(server);

    expect(result).toMatchObject({ resumedFrom: 0, bytesFetched: SIZE, sha256: sha256(content) });
    const [refused, fresh] = server.requests.slice(-2);
    expect(refused).toMatchObject({ status: 416, headers: { range: `bytes=${kept}-` } });
    expect(fresh?.status).toBe(200);
    expect(fresh?.headers.range).toBeUndefined();
    expect((await staged()).equals(content)).toBe(true);
  });

  it('fails with SIZE_MISMATCH before the body when the server announces another size, keeping nothing', async () => {
    const server = await serve();
    let reported = 0;

    const error = (await download(server, { expectedSize: SIZE - 1, onBytes: (n) => (reported += n) }).catch((e: unknown) => e)) as UpdateError;

    expect(error.code).toBe('SIZE_MISMATCH');
    expect(reported).toBe(0);
    expect(await staging.size(STAGED)).toBe(0);
    expect(await staging.readRecord(STAGED)).toBeUndefined();
  });
});
