import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchSpans, isRestartRequired, type FetchChunk, type FetchSpan } from '../src/core/download/fetchSpans.js';
import { UpdateError } from '../src/core/errors.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { MemoryModelStore } from '../src/testing/memoryModelStore.js';
import { probeTimers } from './helpers/probeTimers.js';
import { startTestServer, type ServerOptions, type TestServer } from './helpers/testServer.js';

const MIB = 1024 * 1024;
const SIZE = 20 * MIB + 321;
const FILE = '/1.0.0/model.bin';
const STAGED = { version: '1.0.0', path: 'model.bin' };

let tmp: string;
let root: string;
let content: Buffer;
let staging: FileStagingArea;
const servers: TestServer[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-spans-'));
  root = path.join(tmp, 'root');
  await mkdir(path.join(root, '1.0.0'), { recursive: true });
  content = randomBytes(SIZE);
  await writeFile(path.join(root, FILE), content);
  staging = new FileStagingArea(path.join(tmp, 'models'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await rm(tmp, { recursive: true, force: true });
});

async function serve(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const server = await startTestServer({ root, ...options });
  servers.push(server);
  return server;
}

function chunksOf(start: number, end: number, size: number): FetchChunk[] {
  const chunks: FetchChunk[] = [];
  for (let offset = start; offset < end; offset += size) {
    const length = Math.min(size, end - offset);
    chunks.push({ offset, length, sha256: createHash('sha256').update(content.subarray(offset, offset + length)).digest('hex') });
  }
  return chunks;
}

async function fetchInto(server: TestServer, spans: FetchSpan[], extra: Partial<Parameters<typeof fetchSpans>[0]> = {}) {
  const file = await staging.openRandomAccess(STAGED, SIZE);
  const written: Array<[number, number]> = [];
  try {
    const result = await fetchSpans({
      url: new URL(FILE.slice(1), server.url).href,
      file,
      spans,
      expectedSize: SIZE,
      transport: createNodeTransport(),
      createHash: () => staging.createHash(),
      onWritten: (start, end) => written.push([start, end]),
      ...extra,
    });
    return { result, written };
  } finally {
    await file.close({ sync: false });
  }
}

const rangeRequests = (server: TestServer) => server.requests.filter((request) => request.path === FILE);

describe('fetchSpans', () => {
  it('fetches each span with single ranges into its place, the large one over several connections', async () => {
    const server = await serve();
    const spans = [{ start: 100, end: 5000 }, { start: 2 * MIB, end: SIZE }];
    // The first connection counts as slow (its probe runs out with its first bytes): the others open.
    const probe = probeTimers();
    const { result, written } = await fetchInto(server, spans, { timers: probe.timers, onBytes: () => probe.fire() });
    const staged = await readFile(staging.pathOf(STAGED));
    for (const span of spans) expect(staged.subarray(span.start, span.end).equals(content.subarray(span.start, span.end))).toBe(true);
    expect(staged.subarray(5000, 2 * MIB).every((byte) => byte === 0)).toBe(true);
    expect(result.bytesFetched).toBe(4900 + SIZE - 2 * MIB);
    expect(result.validator).toMatch(/^"/);
    const requests = rangeRequests(server);
    // Every request one range, no multi-range; all but the first carry the validator the first learned.
    for (const request of requests) expect(request.headers.range).toMatch(/^bytes=\d+-\d+$/);
    // Parts of 8 MiB, each its own request (a connection alone and fast would have asked for the rest at once).
    expect(requests).toHaveLength(4);
    expect(requests.slice(1).every((request) => request.headers['if-range'] === result.validator)).toBe(true);
    // What was reported written covers the spans exactly.
    const covered = written.reduce((sum, [start, end]) => sum + end - start, 0);
    expect(covered).toBe(result.bytesFetched);
  });

  it('a first connection found fast stays alone: the rest of the span goes in one request, no other connection opens', async () => {
    const server = await serve();
    // Its probe never runs out: the first part brings PROBE_BYTES in time, so it counts as fast.
    const probe = probeTimers();
    const { result } = await fetchInto(server, [{ start: 0, end: SIZE }], { timers: probe.timers });
    expect(result.bytesFetched).toBe(SIZE);
    expect(probe.started()).toBe(1);
    // Parts of 8 MiB were planned for four connections; alone, the first one asks for the rest at once.
    expect(rangeRequests(server).map((request) => request.headers.range)).toEqual([`bytes=0-${8 * MIB - 1}`, `bytes=${8 * MIB}-${SIZE - 1}`]);
    expect((await readFile(staging.pathOf(STAGED))).equals(content)).toBe(true);
  });

  it('one connection fetches every part, one after another', async () => {
    const server = await serve();
    const spans = [{ start: 0, end: 9 * MIB }, { start: 10 * MIB, end: SIZE }];
    const { result } = await fetchInto(server, spans, { connections: 1 });
    expect(result.bytesFetched).toBe(SIZE - MIB);
    const staged = await readFile(staging.pathOf(STAGED));
    for (const span of spans) expect(staged.subarray(span.start, span.end).equals(content.subarray(span.start, span.end))).toBe(true);
    expect(rangeRequests(server).map((request) => request.headers.range)).toEqual([`bytes=0-${9 * MIB - 1}`, `bytes=${10 * MIB}-${SIZE - 1}`]);
  });

  it('verifies each chunk as it arrives: a corrupt one is fetched again once', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'corrupt', times: 1 });
    const span = { start: MIB, end: 3 * MIB, chunks: chunksOf(MIB, 3 * MIB, 256 * 1024) };
    const { result } = await fetchInto(server, [span]);
    const staged = await readFile(staging.pathOf(STAGED));
    expect(staged.subarray(MIB, 3 * MIB).equals(content.subarray(MIB, 3 * MIB))).toBe(true);
    const requests = rangeRequests(server);
    expect(requests).toHaveLength(2);
    // The second request starts at the chunk that failed (the middle of the body), not at the span's start.
    expect(requests[1]!.headers.range).toBe(`bytes=${2 * MIB}-${3 * MIB - 1}`);
    expect(result.bytesFetched).toBeGreaterThanOrEqual(2 * MIB);
  });

  it('fails with INTEGRITY_MISMATCH when the chunk fails twice, keeping the chunks before it', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'corrupt', times: 2 });
    // The middle of both bodies (0-2 MiB, then the refetch from 512 KiB) falls in the second chunk.
    const span = { start: 0, end: 2 * MIB, chunks: [...chunksOf(0, 512 * 1024, 512 * 1024), ...chunksOf(512 * 1024, 2 * MIB, 1536 * 1024)] };
    const written: Array<[number, number]> = [];
    const error = await fetchInto(server, [span], { onWritten: (start, end) => written.push([start, end]) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpdateError);
    expect((error as UpdateError).code).toBe('INTEGRITY_MISMATCH');
    // Only verified chunks are reported: up to the bad one, never past it.
    expect(written).toEqual([[0, 512 * 1024]]);
    expect(rangeRequests(server).map((request) => request.headers.range)).toEqual([`bytes=0-${2 * MIB - 1}`, `bytes=${512 * 1024}-${2 * MIB - 1}`]);
  });

  it('a file changed on the server (another ETag) asks the caller to start over', async () => {
    const server = await serve();
    const first = await fetchInto(server, [{ start: 0, end: 1000 }]);
    // Same size, new content and mtime: a new strong ETag.
    await writeFile(path.join(root, FILE), randomBytes(SIZE));
    await utimes(path.join(root, FILE), new Date(), new Date(Date.now() + 5000));
    const error = await fetchInto(server, [{ start: 1000, end: 2000 }], { validator: first.result.validator! }).catch((e: unknown) => e);
    expect(isRestartRequired(error)).toBe(true);
    expect((error as UpdateError).code).toBe('DOWNLOAD_FAILED');
  });

  it('a server that ignores Range: start over, or take its 200 as the whole file in that one request', async () => {
    const server = await serve({ ranges: false });
    const error = await fetchInto(server, [{ start: 10, end: 2000 }]).catch((e: unknown) => e);
    expect(isRestartRequired(error) && error.reason).toBe('no-ranges');
    server.requests.length = 0;
    let whole = 0;
    const { result } = await fetchInto(server, [{ start: 0, end: SIZE }], { acceptWholeBody: true, onWholeBody: () => void whole++ });
    expect(result.wholeBody).toBe(true);
    expect(whole).toBe(1);
    expect(rangeRequests(server)).toHaveLength(1);
    expect((await readFile(staging.pathOf(STAGED))).equals(content)).toBe(true);
  });

  it('cancel: CANCELLED, and what arrived is written and reported', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'hang-after', bytes: 3 * MIB, times: 1 });
    const controller = new AbortController();
    const written: Array<[number, number]> = [];
    const promise = fetchInto(server, [{ start: 0, end: 4 * MIB }], {
      signal: controller.signal,
      onWritten: (start, end) => {
        written.push([start, end]);
        if (end >= 3 * MIB) controller.abort();
      },
    });
    const error = await promise.catch((e: unknown) => e);
    expect((error as UpdateError).code).toBe('CANCELLED');
    expect(Math.max(...written.map(([, end]) => end))).toBe(3 * MIB);
  });

  it('writes and reads at any offsets in the memory staging area too', async () => {
    const store = new MemoryModelStore();
    const server = await serve();
    const file = await store.staging.openRandomAccess!(STAGED, SIZE);
    await fetchSpans({
      url: new URL(FILE.slice(1), server.url).href,
      file,
      spans: [{ start: 5, end: 70_000 }],
      expectedSize: SIZE,
      transport: createNodeTransport(),
      createHash: () => store.staging.createHash(),
    });
    expect(Buffer.from(await file.read(5, 69_995)).equals(content.subarray(5, 70_000))).toBe(true);
    await file.close({ sync: true });
    expect(await store.staging.size(STAGED)).toBe(70_000);
  });
});
