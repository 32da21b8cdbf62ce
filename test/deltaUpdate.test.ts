/**
 * Differential updates on Node against real servers: the chunks a held version shares are copied, only
 * the changed spans are requested (nginx's access log says which), the result is byte-identical and its
 * whole-file SHA-256 is checked; a version installed before indexes gets its index computed locally; a
 * server without Range, a chunk that fails its hash and a file changed under us are handled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deltaDownload, heldContent } from '../src/core/delta/deltaDownload.js';
import type { DeltaPlan } from '../src/core/delta/planDelta.js';
import { fetchChunkIndex } from '../src/core/delta/fetchChunkIndex.js';
import { encodeChunkIndex } from '../src/core/chunks/chunkIndex.js';
import { DEFAULT_CHUNKER_PARAMS } from '../src/core/chunks/contentChunker.js';
import { nodeSha256 } from '../src/node/fileStagingArea.js';
import { UpdateError } from '../src/core/errors.js';
import type { Transport } from '../src/core/ports/transport.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { FsModelStore } from '../src/node/fsModelStore.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { publish } from '../src/publish/publish.js';
import { readPublishedManifest } from './helpers/publishedSite.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { runCli } from './helpers/runCli.js';
import { nginxProgram } from './helpers/systemPrograms.js';
import { startTestServer, type Fault, type TestServer } from './helpers/testServer.js';

const MIB = 1024 * 1024;
const TENSORS = 16;
const CHANGED = [5, 11];
const FILE = 'model.safetensors';

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
/** Where v2 differs from v1 shifted by the header growth: the header and the changed tensors, [start, end). */
const headerEnd = v2.length - TENSORS * MIB;
const changedRegions: Array<[number, number]> = [[0, headerEnd], ...CHANGED.map((i): [number, number] => [headerEnd + i * MIB, headerEnd + (i + 1) * MIB])];
const changedBytes = changedRegions.reduce((sum, [a, b]) => sum + b - a, 0);

let tmp: string;
let site: string;
let dir: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-delta-'));
  site = path.join(tmp, 'site');
  dir = path.join(tmp, 'models');
  for (const [version, bytes] of [['v1', v1], ['v2', v2]] as const) {
    await mkdir(path.join(tmp, version));
    await writeFile(path.join(tmp, version, FILE), bytes);
  }
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function publishVersion(version: '1.0.0' | '2.0.0', chunkIndex = true): Promise<void> {
  await publish({ out: site, version, inputs: [path.join(tmp, version === '1.0.0' ? 'v1' : 'v2', FILE)], chunkIndex });
}

function updater(manifestUrl: string) {
  return createModelUpdater({ manifestUrl, dir, allowUnsigned: true, policy: { approval: 'auto', checkOnStart: false } });
}

/** Installs v1 from `url` with an updater that is stopped again, as an earlier run would have. */
async function installV1(url: string, chunkIndex = true): Promise<void> {
  await publishVersion('1.0.0', chunkIndex);
  const first = updater(`${url}manifest.json`);
  await first.start();
  const result = await first.check();
  first.stop();
  expect(result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
}

/** nginx's access log lines for the v2 file: [status, range header, body bytes]. */
async function v2Requests(nginx: Nginx): Promise<Array<{ status: number; range: string; bytes: number }>> {
  const lines = (await readFile(nginx.accessLog, 'utf8')).trim().split('\n');
  return lines
    .filter((line) => line.includes(`/2.0.0/${FILE} `))
    .map((line) => {
      const [status, , , , range, , bytes] = line.split(' ');
      return { status: Number(status), range: range!, bytes: Number(bytes) };
    });
}

describe.skipIf(nginxProgram().skip)('differential update against nginx', () => {
  let nginx: Nginx;
  beforeEach(async () => {
    nginxProgram().require();
    await mkdir(site, { recursive: true });
    nginx = await startNginx({ root: site });
  });
  afterEach(async () => {
    await nginx.stop();
  });

  it('requests only spans around the changed bytes, in single ranges, announces those bytes before downloading, and installs v2 byte for byte', async () => {
    await installV1(nginx.url);
    await publishVersion('2.0.0');
    const second = updater(`${nginx.url}manifest.json`);
    const announced: Array<{ size: number; fetchBytes?: number }> = [];
    second.on('update-available', (event) => announced.push(event));
    await second.start();
    const result = await second.check();
    second.stop();
    expect(result.outcome).toBe('activated');
    expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);

    const requests = await v2Requests(nginx);
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      expect(request.status).toBe(206);
      // One range a request: never a multipart (comma-separated) range.
      expect(request.range).toMatch(/^bytes=\d+-\d+$/);
      const [start, last] = request.range.slice(6).split('-').map(Number) as [number, number];
      // Every span requested holds changed bytes (it is the changed region and the chunks around it).
      expect(changedRegions.some(([a, b]) => start < b && last >= a)).toBe(true);
    }
    const fetched = requests.reduce((sum, request) => sum + request.bytes, 0);
    expect(fetched).toBeGreaterThanOrEqual(changedBytes);
    expect(fetched).toBeLessThanOrEqual(changedBytes + changedRegions.length * 2 * MIB);
    // The check announced exactly what the download then fetched, next to the version's size.
    expect(announced).toEqual([expect.objectContaining({ size: v2.length, fetchBytes: fetched })]);
  });

  it('check (the CLI) reports the bytes the update will fetch next to the size, before downloading anything', async () => {
    await installV1(nginx.url);
    await publishVersion('2.0.0');
    const manifestUrl = `${nginx.url}manifest.json`;
    const { code, json } = await runCli(['check', '--manifest', manifestUrl, '--dir', dir, '--allow-unsigned', '--json']);
    expect(code).toBe(0);
    const candidate = (json as { candidate: { version: string; size: number; fetchBytes: number } }).candidate;
    expect(candidate).toMatchObject({ version: '2.0.0', size: v2.length });
    expect(candidate.fetchBytes).toBeGreaterThanOrEqual(changedBytes);
    expect(candidate.fetchBytes).toBeLessThan(v2.length / 2);
    const text = await runCli(['check', '--manifest', manifestUrl, '--dir', dir, '--allow-unsigned']);
    expect(text.stdout).toContain(`update available: 2.0.0 (${v2.length} bytes, ${candidate.fetchBytes} to fetch), active: 1.0.0`);
    // Nothing of the file itself was requested: only its index.
    expect(await v2Requests(nginx)).toEqual([]);
  });

  it('computes the index of a version installed before indexes existed, caches it in the model folder, and updates differentially', async () => {
    await installV1(nginx.url, false);
    const manifest = await readPublishedManifest(site);
    const v1Sha = manifest.versions[0]!.files[0]!.sha256;
    expect(manifest.versions[0]!.files[0]!.chunkIndex).toBeUndefined();
    expect(await readdir(path.join(dir, 'chunk-index')).catch(() => [])).toEqual([]);
    await publishVersion('2.0.0');
    const second = updater(`${nginx.url}manifest.json`);
    await second.start();
    await second.check();
    second.stop();
    expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);
    expect(await readdir(path.join(dir, 'chunk-index'))).toContain(`${v1Sha}.65536-262144-1048576`);
    const fetched = (await v2Requests(nginx)).reduce((sum, request) => sum + request.bytes, 0);
    expect(fetched).toBeLessThan(v2.length / 2);
  });

  it('checks the whole file: a held chunk damaged on disk since it was installed is caught by the whole-file SHA-256 and fetched', async () => {
    await installV1(nginx.url);
    const manifest = await readPublishedManifest(site);
    const blob = path.join(dir, 'blobs', manifest.versions[0]!.files[0]!.sha256);
    // Bit rot in an unchanged tensor (8): the cached index still lists the good chunk there.
    await chmod(blob, 0o644);
    const handle = await open(blob, 'r+');
    const at = v1.length - TENSORS * MIB + 8 * MIB + 12345;
    await handle.write(Buffer.from([v1[at]! ^ 0xff]), 0, 1, at);
    await handle.close();
    await publishVersion('2.0.0');
    const second = updater(`${nginx.url}manifest.json`);
    await second.start();
    const result = await second.check();
    second.stop();
    expect(result.outcome).toBe('activated');
    expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);
    // One more range than the changed regions need: the damaged chunk, fetched after the whole-file check failed.
    const damaged = at + (v2.length - v1.length);
    const ranges = (await v2Requests(nginx)).map((request) => request.range.slice(6).split('-').map(Number) as [number, number]);
    expect(ranges.some(([start, last]) => start <= damaged && damaged <= last && !changedRegions.some(([a, b]) => start < b && last >= a))).toBe(true);
  });
});

describe.skipIf(nginxProgram().skip)('a server without Range (nginx max_ranges 0)', () => {
  it('gets the whole file in one plain answer and installs it', async () => {
    nginxProgram().require();
    await mkdir(site, { recursive: true });
    const nginx = await startNginx({ root: site, maxRanges: 0 });
    try {
      await installV1(nginx.url);
      await publishVersion('2.0.0');
      const second = updater(`${nginx.url}manifest.json`);
      await second.start();
      const result = await second.check();
      second.stop();
      expect(result.outcome).toBe('activated');
      expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);
      const requests = await v2Requests(nginx);
      // The first range request was answered 200 (whole body): dropped, then the file came whole.
      expect(requests.every((request) => request.status === 200)).toBe(true);
      expect(requests.at(-1)!.bytes).toBe(v2.length);
    } finally {
      await nginx.stop();
    }
  });
});

describe('faults in a differential download (loopback test server)', () => {
  let server: TestServer;
  beforeEach(async () => {
    await mkdir(site, { recursive: true });
    server = await startTestServer({ root: site });
    await installV1(server.url);
    await publishVersion('2.0.0');
  });
  afterEach(async () => {
    await server.close();
  });

  /** deltaDownload of v2 into the model folder's staging, as the download actor runs it. */
  async function downloadV2(transport: Transport = createNodeTransport(), extra: { onCopied?: (bytes: number) => void; onPlan?: (plan: DeltaPlan) => void } = {}) {
    const manifest = await readPublishedManifest(site);
    const file = manifest.versions.find((entry) => entry.version === '2.0.0')!.files[0]!;
    const store = new FsModelStore(dir);
    const staging = new FileStagingArea(dir);
    return {
      file,
      staging,
      result: await deltaDownload({
        url: new URL(file.url, server.url).href,
        indexUrl: new URL(file.chunkIndex!.url, server.url).href,
        expected: file,
        file: { version: '2.0.0', path: FILE },
        held: await heldContent(store),
        transport,
        staging,
        store,
        ...extra,
      }),
    };
  }

  it('copies every held chunk while the changed spans are still on their way: the copy never waits for the network', async () => {
    const base = createNodeTransport();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let copied = 0;
    let copiedBeforeNetwork: number | undefined;
    // Every answer for the model file waits until the copy has finished, however long a loaded machine takes.
    // A copy that waited for the network would deadlock here, and the test fail at its timeout.
    const transport: Transport = {
      async get(request) {
        if (request.url.pathname.endsWith(FILE)) {
          await held;
          copiedBeforeNetwork ??= copied;
        }
        return base.get(request);
      },
    };
    // What the plan copies depends on where the random bytes put the chunk edges around the changes.
    let planned = Infinity;
    const { result, file } = await downloadV2(transport, {
      onPlan: (plan) => (planned = plan.copies.reduce((sum, copy) => sum + copy.length, 0)),
      onCopied: (bytes) => {
        copied += bytes;
        if (copied >= planned) release();
      },
    });
    // The first changed span is the header at byte 0: a pass in file order would have copied nothing before it.
    expect(planned).toBeGreaterThan(v2.length / 2);
    expect(copiedBeforeNetwork).toBe(planned);
    expect(result!.sha256).toBe(file.sha256);
    expect(result!.copiedBytes).toBe(copied);
    expect((await readFile(path.join(dir, 'staging', '2.0.0', FILE))).equals(v2)).toBe(true);
  });

  it('refetches a chunk that fails its hash once, and installs the right bytes', async () => {
    server.fault(`/2.0.0/${FILE}`, { kind: 'corrupt', times: 1 } satisfies Fault);
    const { result, file } = await downloadV2();
    expect(result).not.toBeNull();
    expect(result!.sha256).toBe(file.sha256);
    const staged = await readFile(path.join(dir, 'staging', '2.0.0', FILE));
    expect(staged.equals(v2)).toBe(true);
  });

  it('fails with INTEGRITY_MISMATCH when the refetched chunk fails its hash again', async () => {
    server.fault(`/2.0.0/${FILE}`, { kind: 'corrupt' } satisfies Fault);
    const failure = await downloadV2().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpdateError);
    expect((failure as UpdateError).code).toBe('INTEGRITY_MISMATCH');
  });

  it('starts over with the whole file when the file changes on the server under us (another ETag)', async () => {
    const served = path.join(site, '2.0.0', FILE);
    const base = createNodeTransport();
    let requests = 0;
    // After the first range answer, the file is replaced (same bytes, new mtime: another strong ETag).
    const transport: Transport = {
      async get(request) {
        const response = await base.get(request);
        if (request.url.pathname.endsWith(FILE) && ++requests === 1) await utimes(served, new Date(), new Date(Date.now() + 60_000));
        return response;
      },
    };
    const { result, staging } = await downloadV2(transport);
    // Not assembled from two versions of the file: the caller downloads it whole.
    expect(result).toBeNull();
    expect(await staging.size({ version: '2.0.0', path: FILE })).toBe(0);
    const rangeRequests = server.requests.filter((request) => request.path.endsWith(FILE) && request.headers['if-range'] !== undefined);
    expect(rangeRequests.some((request) => request.status === 200)).toBe(true);
  });

  it('reads an index larger than one socket read byte for byte (the transport reuses its read buffer)', async () => {
    // An index of a 1 GiB file (4,096 chunks of 256 KiB, 147 KB of index): many reads of the Node transport.
    const chunks = Array.from({ length: 4096 }, (_, i) => ({ offset: i * 256 * 1024, length: 256 * 1024, sha256: createHash('sha256').update(String(i)).digest('hex') }));
    const bytes = encodeChunkIndex({ format: 1, params: DEFAULT_CHUNKER_PARAMS, size: 4096 * 256 * 1024, chunks });
    await mkdir(path.join(site, 'chunks'), { recursive: true });
    await writeFile(path.join(site, 'chunks', 'big.mucx'), bytes);
    const ref = { url: 'chunks/big.mucx', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    const fetched = await fetchChunkIndex({ url: new URL(ref.url, server.url).href, ref, fileSize: 4096 * 256 * 1024, file: { version: '3.0.0', path: FILE }, transport: createNodeTransport(), createHash: async () => nodeSha256() });
    expect(Buffer.from(fetched.bytes).equals(Buffer.from(bytes))).toBe(true);
    expect(fetched.index.chunks).toEqual(chunks);
  });

  it('refuses an index whose bytes are not the ones the signed manifest names (INTEGRITY_MISMATCH), before fetching the file', async () => {
    const manifest = await readPublishedManifest(site);
    const ref = manifest.versions.find((entry) => entry.version === '2.0.0')!.files[0]!.chunkIndex!;
    const served = await readFile(path.join(site, ref.url));
    served[40] = served[40]! ^ 0xff; // a chunk's hash, changed by whoever controls the server
    await writeFile(path.join(site, ref.url), served);
    const failure = await downloadV2().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpdateError);
    expect((failure as UpdateError).code).toBe('INTEGRITY_MISMATCH');
    expect((failure as UpdateError).message).toContain('chunk index');
    expect(server.requests.filter((request) => request.path.endsWith(`/2.0.0/${FILE}`))).toEqual([]);
  });

  it('downloads the file whole when the server does not serve its index (404)', async () => {
    const manifest = await readPublishedManifest(site);
    const ref = manifest.versions.find((entry) => entry.version === '2.0.0')!.files[0]!.chunkIndex!;
    await rm(path.join(site, ref.url));
    const { result } = await downloadV2();
    expect(result).toBeNull();
    expect(server.requests.filter((request) => request.path.endsWith(`/2.0.0/${FILE}`))).toEqual([]);
  });
});
