import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadParallel } from '../src/core/download/downloadParallel.js';
import { UpdateError } from '../src/core/errors.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { startNginx } from './helpers/nginx.js';
import { nginxProgram } from './helpers/systemPrograms.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';
import { createWorld } from './helpers/fixtures.js';
import { probeTimers } from './helpers/probeTimers.js';

const MIB = 1024 * 1024;
const SIZE = 48 * MIB + 777;
const FILE = '/1.0.0/model.bin';
const STAGED = { version: '1.0.0', path: 'model.bin' };
const PROJECT = path.resolve(import.meta.dirname, '..');

let tmp: string;
let root: string;
let content: Buffer;
let staging: FileStagingArea;
const servers: TestServer[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-parallel-'));
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

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function serve(): Promise<TestServer> {
  const server = await startTestServer({ root });
  servers.push(server);
  return server;
}

function download(url: string, signal?: AbortSignal) {
  return downloadParallel({ url, file: STAGED, expectedSize: SIZE, transport: createNodeTransport(), staging, ...(signal ? { signal } : {}) });
}

/** The [start, end] byte ranges the requests asked for. */
const ranges = (server: TestServer) =>
  server.requests.filter((request) => request.path === FILE).map((request) => (request.headers.range as string).replace('bytes=', '').split('-').map(Number) as [number, number]);

describe('parallel download', () => {
  it('a fast link stays one stream: the first part, then the rest in one request, byte-exact, with its SHA-256', async () => {
    const server = await serve();
    // The probe never runs out (the first part brings its bytes in time): no other connection opens.
    const probe = probeTimers();
    const result = await downloadParallel({ url: new URL(FILE.slice(1), server.url).href, file: STAGED, expectedSize: SIZE, transport: createNodeTransport(), staging, timers: probe.timers });
    expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: 0, bytesFetched: SIZE });
    expect((await readFile(staging.pathOf(STAGED))).equals(content)).toBe(true);
    const part = Math.ceil(SIZE / 4);
    expect(ranges(server)).toEqual([[0, part - 1], [part, SIZE - 1]]);
    expect(await staging.readRecord(STAGED)).toBeUndefined();
  });

  it('a connection dropped in one span: the others finish theirs, and the next attempt fetches only what that one missed', async () => {
    const server = await serve();
    // The first request (the first part) drops after 5 MiB.
    server.fault(FILE, { kind: 'drop-after', bytes: 5 * MIB, times: 1 });
    const url = new URL(FILE.slice(1), server.url).href;
    // The first connection counts as slow (its probe runs out with its first bytes): the others open.
    const probe = probeTimers();
    const error = await downloadParallel({ url, file: STAGED, expectedSize: SIZE, transport: createNodeTransport(), staging, timers: probe.timers, onBytes: () => probe.fire() }).catch((e: unknown) => e);
    expect((error as UpdateError).code).toBe('NETWORK_UNAVAILABLE');
    const first = ranges(server).sort((a, b) => a[0] - b[0]);
    const record = await staging.readRecord(STAGED);
    // Everything but the rest of the first part is durable and recorded.
    expect(record?.completed).toEqual([[0, 5 * MIB], [first[1]![0], SIZE]]);
    server.requests.length = 0;
    const result = await download(url);
    expect(result.sha256).toBe(sha256(content));
    expect(result.resumedFrom).toBe(SIZE - (first[1]![0] - 5 * MIB));
    expect(ranges(server)).toEqual([[5 * MIB, first[1]![0] - 1]]);
    expect(server.requests[0]!.headers['if-range']).toBe(record?.validator);
  });

  it('a file changed on the server between attempts (new ETag): the kept spans are dropped and it starts over', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'drop-after', bytes: 5 * MIB, times: 1 });
    const url = new URL(FILE.slice(1), server.url).href;
    await download(url).catch(() => undefined);
    const changed = randomBytes(SIZE);
    await writeFile(path.join(root, FILE), changed);
    await utimes(path.join(root, FILE), new Date(), new Date(Date.now() + 5000));
    server.requests.length = 0;
    const result = await download(url);
    expect(result.sha256).toBe(sha256(changed));
    expect((await readFile(staging.pathOf(STAGED))).equals(changed)).toBe(true);
    // If-Range failed: the server sent the whole new file in answer to the first range.
    expect(server.requests.filter((request) => request.path === FILE).map((request) => request.status)).toEqual([200]);
  });

  it('cancel: CANCELLED, with the spans that arrived recorded for the next attempt', async () => {
    const server = await serve();
    server.fault(FILE, { kind: 'hang-after', bytes: 2 * MIB, times: 1 });
    const controller = new AbortController();
    const url = new URL(FILE.slice(1), server.url).href;
    // Cancelled once every byte that will come has come: the hung part's 2 MiB and the other parts whole.
    let received = 0;
    let arrived!: () => void;
    const allArrived = new Promise<void>((resolve) => (arrived = resolve));
    const promise = downloadParallel({
      url, file: STAGED, expectedSize: SIZE, transport: createNodeTransport(), staging, signal: controller.signal,
      onBytes: (delta) => {
        received += delta;
        const partZero = Math.ceil(SIZE / 4);
        if (received === SIZE - partZero + 2 * MIB) arrived();
      },
    });
    await allArrived;
    controller.abort();
    const cancelError = (await promise.catch((e: unknown) => e)) as UpdateError;
    const record = await staging.readRecord(STAGED);
    expect(cancelError.code).toBe('CANCELLED');
    expect(record?.completed).toEqual([[0, 2 * MIB], [Math.ceil(SIZE / 4), SIZE]]);
  });

  it('keeps the recorded spans across a SIGKILL of the process downloading them', async () => {
    const server = await serve();
    // One part hangs half-way, so the kill comes while the others' spans are recorded and it is still open.
    server.fault(FILE, { kind: 'hang-after', bytes: 6 * MIB, times: 1 });
    const dir = path.join(tmp, 'models');
    const url = new URL(FILE.slice(1), server.url).href;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/rangedVictim.ts', url, dir, String(SIZE)], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let killedAt: Array<[number, number]> | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      const record = line.startsWith('record ') ? (JSON.parse(line.slice(7)) as { completed?: Array<[number, number]> }) : undefined;
      const kept = (record?.completed ?? []).reduce((sum, [start, end]) => sum + end - start, 0);
      if (kept >= 32 * MIB) {
        killedAt = record!.completed;
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    expect(killedAt).toBeDefined();
    server.requests.length = 0;
    const result = await download(url);
    expect(result.sha256).toBe(sha256(content));
    // Only what the record did not list was fetched again.
    const kept = killedAt!.reduce((sum, [start, end]) => sum + end - start, 0);
    expect(result.resumedFrom).toBeGreaterThanOrEqual(kept);
    expect(result.bytesFetched).toBe(SIZE - result.resumedFrom);
    for (const [start, last] of ranges(server)) for (const [a, b] of killedAt!) expect(last < a || start >= b).toBe(true);
  });
});

describe('parallel download in an update', () => {
  it('the updater fetches a large file by ranges (the parallel path, on by default), with progress and the same result', async () => {
    const world = await createWorld();
    try {
      const model = randomBytes(40 * MIB + 5);
      await world.publishVersion('1.0.0', { files: { 'model.bin': model } });
      const updater = world.updater();
      const progress: number[] = [];
      updater.on('progress', (p) => progress.push(p.bytes));
      await updater.start();
      const result = await updater.check();
      expect(result.outcome).toBe('activated');
      expect((await readFile(path.join(updater.active!.path, 'model.bin'))).equals(model)).toBe(true);
      const asked = world.modelRequests().map((request) => request.headers.range);
      // One stream or four, as the probe finds loopback today: ranges either way, never the plain request.
      expect(asked.length).toBeGreaterThanOrEqual(2);
      expect(asked.every((range) => /^bytes=\d+-\d+$/.test(String(range)))).toBe(true);
      expect(progress.at(-1)).toBe(model.length);
    } finally {
      await world.close();
    }
  });
});

const nginx = nginxProgram();
describe.skipIf(nginx.skip)('parallel download from nginx', () => {
  it('a link throttled per connection (limit_rate 20m): the others open, four parts over four connections, byte-exact', async () => {
    nginx.require();
    const server = await startNginx({ root, limitRate: '20m' });
    try {
      const result = await download(`${server.url}1.0.0/model.bin`);
      expect(result).toEqual({ size: SIZE, sha256: sha256(content), resumedFrom: 0, bytesFetched: SIZE });
      expect((await readFile(staging.pathOf(STAGED))).equals(content)).toBe(true);
      // Four parts, one single range each, together the whole file once.
      const lines = (await readFile(server.accessLog, 'utf8')).trim().split('\n');
      const asked = lines.map((line) => /^206 GET \/1\.0\.0\/model\.bin \S+ bytes=(\d+)-(\d+) /.exec(line)).map((match) => [Number(match![1]), Number(match![2])] as const);
      expect(asked).toHaveLength(4);
      expect(asked.reduce((sum, [start, last]) => sum + last - start + 1, 0)).toBe(SIZE);
    } finally {
      await server.stop();
    }
  });

  it('a server without Range (max_ranges 0): the whole file in one plain request', async () => {
    nginx.require();
    const server = await startNginx({ root, maxRanges: 0 });
    try {
      const result = await download(`${server.url}1.0.0/model.bin`);
      expect(result.sha256).toBe(sha256(content));
      const lines = (await readFile(server.accessLog, 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^200 GET /1.0.0/model.bin HTTP/1.1 .* ${SIZE}$`));
    } finally {
      await server.stop();
    }
  });
});

