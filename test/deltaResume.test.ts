/**
 * Verified resume by chunk of a differential download, against the loopback test server: after a
 * dropped connection or a SIGKILL of the process, the chunks made durable and recorded are kept and
 * only the missing ones are requested again; a file changed on the server between attempts (another
 * ETag) starts over. Every result is byte-identical to the new version.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deltaDownload, heldContent } from '../src/core/delta/deltaDownload.js';
import type { DeltaPlan } from '../src/core/delta/planDelta.js';
import { UpdateError } from '../src/core/errors.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { FsModelStore } from '../src/node/fsModelStore.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { publish } from '../src/publish/publish.js';
import { readPublishedManifest } from './helpers/publishedSite.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const MIB = 1024 * 1024;
const TENSORS = 16;
const CHANGED = [3, 8, 13];
const FILE = 'model.safetensors';
const SERVED = `/2.0.0/${FILE}`;
const STAGED = { version: '2.0.0', path: FILE };
const PROJECT = path.resolve(import.meta.dirname, '..');
/** Lets the first request through whole (the server closes after it): the next one gets the fault. */
const PASS = { kind: 'drop-after', bytes: 64 * MIB, times: 1 } as const;

/** A safetensors-like file: u64 header length, JSON header, 1 MiB tensors. */
function model(tensors: Buffer[], note: string): Buffer {
  const header: Record<string, unknown> = { __metadata__: { note } };
  tensors.forEach((_, i) => (header[`t${i}`] = { dtype: 'F32', shape: [512, 512], data_offsets: [i * MIB, (i + 1) * MIB] }));
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors]);
}

const v1Tensors = Array.from({ length: TENSORS }, () => randomBytes(MIB));
const v1 = model(v1Tensors, '');
const v2 = model(v1Tensors.map((tensor, i) => (CHANGED.includes(i) ? randomBytes(MIB) : tensor)), 'x'.repeat(100));

let tmp: string;
let site: string;
let dir: string;
let server: TestServer;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-delta-resume-'));
  site = path.join(tmp, 'site');
  dir = path.join(tmp, 'models');
  await mkdir(site, { recursive: true });
  for (const [version, bytes] of [['v1', v1], ['v2', v2]] as const) {
    await mkdir(path.join(tmp, version));
    await writeFile(path.join(tmp, version, FILE), bytes);
  }
  server = await startTestServer({ root: site });
  // v1 installed by an updater, as an earlier run would have; then v2 published.
  await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'v1', FILE)], chunkIndex: true });
  const first = createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir, allowUnsigned: true, policy: { approval: 'auto', checkOnStart: false } });
  await first.start();
  expect(await first.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  first.stop();
  await publish({ out: site, version: '2.0.0', inputs: [path.join(tmp, 'v2', FILE)], chunkIndex: true });
  server.requests.length = 0;
});

afterEach(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

async function v2Entry() {
  const manifest = await readPublishedManifest(site);
  return manifest.versions.find((entry) => entry.version === '2.0.0')!.files[0]!;
}

/** deltaDownload of v2 into the model folder's staging, as the download actor runs it. */
async function downloadV2(onPlan?: (plan: DeltaPlan) => void) {
  const file = await v2Entry();
  const store = new FsModelStore(dir);
  return deltaDownload({
    url: new URL(file.url, server.url).href,
    indexUrl: new URL(file.chunkIndex!.url, server.url).href,
    expected: file,
    file: STAGED,
    held: await heldContent(store),
    transport: createNodeTransport(),
    staging: new FileStagingArea(dir),
    store,
    ...(onPlan ? { onPlan } : {}),
  });
}

/** The [start, end) ranges requested for the v2 file since the log was cleared. */
function requestedRanges(): Array<[number, number]> {
  return server.requests
    .filter((request) => request.path === SERVED && typeof request.headers.range === 'string')
    .map((request) => {
      const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range as string)!;
      return [Number(a), Number(b) + 1];
    });
}

const total = (ranges: Array<[number, number]>) => ranges.reduce((sum, [a, b]) => sum + b - a, 0);
const disjoint = (ranges: Array<[number, number]>, kept: Array<[number, number]>) =>
  ranges.every(([start, end]) => kept.every(([a, b]) => end <= a || start >= b));

/** The plan's fetched chunks that lie wholly inside `ranges` (a chunk is kept whole or not at all). */
const wholeChunks = (plan: DeltaPlan, ranges: Array<[number, number]>) =>
  plan.spans
    .flatMap((span) => span.chunks ?? [])
    .map((chunk): [number, number] => [chunk.offset, chunk.offset + chunk.length])
    .filter(([start, end]) => ranges.some(([a, b]) => a <= start && end <= b));

async function expectStagedV2(): Promise<void> {
  expect((await readFile(path.join(dir, 'staging', '2.0.0', FILE))).equals(v2)).toBe(true);
}

describe('verified resume by chunk of a differential download', () => {
  it('after a dropped connection in one span, the next attempt requests only what is missing and the file is byte-identical', async () => {
    server.fault(SERVED, PASS);
    server.fault(SERVED, { kind: 'drop-after', bytes: 200 * 1024, times: 1 });
    let plan: DeltaPlan | undefined;
    const failure = await downloadV2((made) => (plan = made)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpdateError);
    const record = await new FileStagingArea(dir).readRecord(STAGED);
    expect(record?.completed?.length).toBeGreaterThan(0);
    const kept = record!.completed!;

    server.requests.length = 0;
    const result = await downloadV2();
    expect(result?.sha256).toBe((await v2Entry()).sha256);
    await expectStagedV2();
    const asked = requestedRanges();
    expect(asked.length).toBeGreaterThan(0);
    // Nothing recorded was asked for again, and less than the plan's spans was asked for.
    expect(wholeChunks(plan!, kept).length).toBeGreaterThan(0);
    expect(disjoint(asked, wholeChunks(plan!, kept))).toBe(true);
    expect(total(asked)).toBeLessThan(plan!.fetchBytes);
    expect(result!.bytesFetched).toBe(total(asked));
  });

  it('keeps the recorded chunks across a SIGKILL of the process downloading them, and completes in a fresh one', async () => {
    // One span hangs part-way, so the kill comes while chunks before it are recorded and it is still open.
    server.fault(SERVED, PASS);
    server.fault(SERVED, { kind: 'hang-after', bytes: 200 * 1024, times: 1 });
    const file = await v2Entry();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/helpers/deltaVictim.ts', new URL(file.url, server.url).href, new URL(file.chunkIndex!.url, server.url).href, dir, JSON.stringify(file)],
      { cwd: PROJECT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let spans: Array<[number, number]> = [];
    let killedAt: Array<[number, number]> | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith('plan ')) spans = JSON.parse(line.slice(5)) as Array<[number, number]>;
      const completed = line.startsWith('record ') ? (JSON.parse(line.slice(7)) as { completed?: Array<[number, number]> }).completed ?? [] : [];
      // Killed once a whole fetched span is durable and recorded.
      if (spans.some(([start, end]) => completed.some(([a, b]) => a <= start && end <= b))) {
        killedAt = completed;
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    expect(killedAt).toBeDefined();

    server.requests.length = 0;
    let plan: DeltaPlan | undefined;
    const result = await downloadV2((made) => (plan = made));
    expect(result?.sha256).toBe(file.sha256);
    await expectStagedV2();
    const asked = requestedRanges();
    // No whole chunk the record listed was asked for again (a chunk is kept whole or not at all).
    const keptChunks = wholeChunks(plan!, killedAt!);
    expect(keptChunks.length).toBeGreaterThan(0);
    expect(disjoint(asked, keptChunks)).toBe(true);
    expect(total(asked)).toBeLessThan(plan!.fetchBytes);
  });

  it('starts over when the file changed on the server between attempts (another ETag), and completes correctly', async () => {
    server.fault(SERVED, PASS);
    server.fault(SERVED, { kind: 'drop-after', bytes: 200 * 1024, times: 1 });
    let plan: DeltaPlan | undefined;
    await expect(downloadV2((made) => (plan = made))).rejects.toBeInstanceOf(UpdateError);
    const record = await new FileStagingArea(dir).readRecord(STAGED);
    expect(record?.completed?.length).toBeGreaterThan(0);
    // Same bytes, new mtime: another strong ETag.
    await utimes(path.join(site, '2.0.0', FILE), new Date(), new Date(Date.now() + 60_000));

    server.requests.length = 0;
    const result = await downloadV2();
    expect(result).not.toBeNull();
    expect(result!.sha256).toBe((await v2Entry()).sha256);
    await expectStagedV2();
    const requests = server.requests.filter((request) => request.path === SERVED);
    // The kept chunks were offered under the old validator, refused (200), then the whole plan fetched again.
    const refused = requests.findIndex((request) => request.headers['if-range'] === record!.validator && request.status === 200);
    expect(refused).toBeGreaterThanOrEqual(0);
    const again = requests.slice(refused + 1).filter((request) => request.status === 206);
    expect(again.every((request) => request.headers['if-range'] !== record!.validator)).toBe(true);
    expect(again.reduce((sum, request) => sum + request.bytesSent, 0)).toBe(plan!.fetchBytes);
    expect(await new FileStagingArea(dir).readRecord(STAGED)).toBeUndefined();
  });
});
