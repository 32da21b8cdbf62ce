/**
 * Differential updates in real headless Chromium: on OPFS the browser store reads the held version's
 * content (readContent) and caches chunk indexes in IndexedDB, so only single ranges around the changed
 * bytes are requested from the loopback server and v2 is installed byte for byte; with `opfs: false`
 * (IndexedDB chunks, no random-access staging) the changed file is downloaded whole and still correct.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium, writeBrowserPage } from './helpers/browserHarness.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { chromiumProgram } from './helpers/systemPrograms.js';

const chromium = chromiumProgram();
const MiB = 1024 * 1024;
const TENSORS = 16;
const CHANGED = [5, 11];

/** A safetensors-like file: u64 header length, JSON header, 1 MiB tensors. */
function model(tensors: Buffer[], note: string): Buffer {
  const header: Record<string, unknown> = { __metadata__: { note } };
  tensors.forEach((_, i) => (header[`t${i}`] = { dtype: 'F32', shape: [512, 512], data_offsets: [i * MiB, (i + 1) * MiB] }));
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors]);
}

// 16 MiB (differential starts at 8 MiB); v2 grows the header by 100 bytes, shifting every tensor, and changes two.
const v1Tensors = Array.from({ length: TENSORS }, () => randomBytes(MiB));
const v1 = model(v1Tensors, '');
const v2 = model(v1Tensors.map((tensor, i) => (CHANGED.includes(i) ? randomBytes(MiB) : tensor)), 'x'.repeat(100));
const headerEnd = v2.length - TENSORS * MiB;
/** Where v2 differs from v1: the header and the changed tensors, [start, end). */
const changedRegions: Array<[number, number]> = [[0, headerEnd], ...CHANGED.map((i): [number, number] => [headerEnd + i * MiB, headerEnd + (i + 1) * MiB])];
const changedBytes = changedRegions.reduce((sum, [a, b]) => sum + b - a, 0);

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const BASE = { appVersion: '1.0.0', allowUnsigned: true, policy: { checkOnStart: false } };

let world: World;
let profile: string;
let pageDir: string;
let chrome: BrowserContext;
let page: Page;
let caseNumber = 0;
let name: string;

beforeAll(async () => {
  if (chromium.skip) return;
  chromium.require();
  profile = await mkdtemp(join(tmpdir(), 'model-updater-delta-profile-'));
  pageDir = join(profile, 'page');
  await writeBrowserPage(pageDir);
  chrome = await launchChromium(join(profile, 'chromium'));
}, 120_000);

afterAll(async () => {
  await chrome?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

beforeEach(async () => {
  if (chromium.skip) return;
  name = `delta-${++caseNumber}`;
  world = await createWorld();
  await cp(pageDir, join(world.site, 'app'), { recursive: true });
  page = await chrome.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.stack ?? error.message}`));
  await page.goto(`${world.server.url}app/index.html`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  return async () => {
    await page.evaluate(() => (globalThis as any).updater?.stop()).catch(() => undefined);
    await page.close();
    await world.close();
  };
});

/** Creates `window.updater`, records its `update-available` events in `window.announced`, and starts it. */
function startUpdater(options: Record<string, unknown> = {}): Promise<string> {
  return page.evaluate(
    async ({ manifestUrl, name, options }) => {
      const mu = (globalThis as any).mu;
      const updater = mu.createBrowserModelUpdater({ manifestUrl, name, ...options });
      (globalThis as any).updater = updater;
      (globalThis as any).announced = [];
      updater.on('update-available', (event: any) => (globalThis as any).announced.push({ size: event.size, fetchBytes: event.fetchBytes }));
      await updater.start();
      return updater.store.backend;
    },
    { manifestUrl: world.manifestUrl, name, options: { ...BASE, ...options } },
  );
}

const check = () => page.evaluate(async () => {
  const result = await (globalThis as any).updater.check();
  return { outcome: result.outcome, version: result.version, error: result.error && { code: result.error.code, message: result.error.message } };
});

/** SHA-256 and size of an installed file read back through openFile(). */
const installedFile = (version: string) => page.evaluate(async (version) => {
  const blob: Blob = await (globalThis as any).updater.store.openFile(version, 'model.bin');
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return { size: blob.size, sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') };
}, version);

/** Names of the chunk indexes cached in the store's files database (keys ['c', name]). */
const cachedIndexes = () => page.evaluate(async (name) => {
  const db: IDBDatabase = await new Promise((resolve, reject) => {
    const request = indexedDB.open(`model-updater:${name}:files`);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const keys: IDBValidKey[] = await new Promise((resolve) => {
    const request = db.transaction('files').objectStore('files').getAllKeys(IDBKeyRange.bound(['c'], ['c', []]));
    request.onsuccess = () => resolve(request.result);
  });
  db.close();
  return keys.map((key) => (key as string[])[1]!);
}, name);

const announced = () => page.evaluate(() => (globalThis as any).announced as Array<{ size: number; fetchBytes?: number }>);
const modelRequests = (version: string) => world.server.requests.filter((r) => r.path === `/${version}/model.bin`);

/** Installs v1 in the page, then publishes v2 and updates to it. */
async function updateToV2(options: Record<string, unknown> = {}): Promise<string> {
  await world.publishVersion('1.0.0', { files: { 'model.bin': v1 } });
  const backend = await startUpdater(options);
  expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  await world.publishVersion('1.1.0', { files: { 'model.bin': v2 } });
  expect(await check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  return backend;
}

describe.skipIf(chromium.skip)('differential updates in Chromium', () => {
  it('on OPFS fetches only single ranges around the changed bytes, announces them, and installs v2 byte for byte', async () => {
    expect(await updateToV2()).toBe('opfs');
    // A whole file in the browser comes in one plain request by default, hashed in order by the OPFS worker.
    expect(modelRequests('1.0.0').map((r) => r.headers.range)).toEqual([undefined]);
    expect(await installedFile('1.1.0')).toEqual({ size: v2.length, sha256: sha256(v2) });

    // The chunk indexes came from the signed document beside the manifest, read once with each new
    // manifest: for the install of 1.0.0 (its index is kept) and for the update.
    expect(world.server.requests.filter((r) => r.path.endsWith('manifest.chunks.json'))).toHaveLength(2);
    const requests = modelRequests('1.1.0');
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      expect(request.status).toBe(206);
      // One range a request: never a multipart (comma-separated) range.
      expect(request.headers.range).toMatch(/^bytes=\d+-\d+$/);
      const [start, last] = String(request.headers.range).slice(6).split('-').map(Number) as [number, number];
      // Every span requested holds changed bytes (the changed region and the chunks around it).
      expect(changedRegions.some(([a, b]) => start < b && last >= a)).toBe(true);
    }
    const fetched = requests.reduce((sum, request) => sum + request.bytesSent, 0);
    expect(fetched).toBeGreaterThanOrEqual(changedBytes);
    expect(fetched).toBeLessThanOrEqual(changedBytes + changedRegions.length * 2 * MiB);
    expect(fetched).toBeLessThan(v2.length / 2);
    // update-available announced exactly what the download then fetched.
    expect(await announced()).toEqual([{ size: v1.length, fetchBytes: v1.length }, { size: v2.length, fetchBytes: fetched }]);
  });

  it('reads slices of held content, null when it is gone, and caches chunk indexes under checked names', async () => {
    expect(await updateToV2()).toBe('opfs');
    const answers = await page.evaluate(
      async ({ v1Sha, v2Sha, cached }) => {
        const store = (globalThis as any).updater.store;
        const hex = (bytes: Uint8Array | null) => bytes && [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
        const v2Index = cached.find((n) => n.startsWith(v2Sha));
        const invalid = await store.readChunkIndex('../v1').then(() => 'read', (error: any) => error.code);
        await store.writeChunkIndex(`${'0'.repeat(64)}.1-2-3`, new Uint8Array([1, 2, 3]).subarray(1));
        return {
          slice: hex(await store.readContent(v1Sha, 1, 4)),
          tail: (await store.readContent(v1Sha, 16 * 1024 * 1024, 1 << 20))?.length,
          missing: await store.readContent('f'.repeat(64), 0, 4),
          v2Index: v2Index !== undefined && (await store.readChunkIndex(v2Index)).length > 0,
          uncached: await store.readChunkIndex(`${'e'.repeat(64)}.1-2-3`),
          roundTrip: [...(await store.readChunkIndex(`${'0'.repeat(64)}.1-2-3`))],
          invalid,
        };
      },
      { v1Sha: sha256(v1), v2Sha: sha256(v2), cached: await cachedIndexes() },
    );
    expect(answers).toEqual({
      slice: v1.subarray(1, 5).toString('hex'),
      tail: v1.length - 16 * MiB,
      missing: null,
      v2Index: true,
      uncached: null,
      roundTrip: [2, 3],
      invalid: 'INVALID_ARGUMENT',
    });
    // v1's index (computed from its content) is cached; once v1 is collected, its index goes with it.
    expect((await cachedIndexes()).some((n) => n.startsWith(sha256(v1)))).toBe(true);
    await page.evaluate(() => (globalThis as any).updater.store.collectGarbage(['1.1.0']));
    const left = await cachedIndexes();
    expect(left.some((n) => n.startsWith(sha256(v2)))).toBe(true);
    expect(left.some((n) => n.startsWith(sha256(v1)) || n.startsWith('0'.repeat(64)))).toBe(false);
  });

  it('with the IndexedDB fallback (opfs: false) downloads the changed file whole and installs it byte for byte', async () => {
    expect(await updateToV2({ opfs: false })).toBe('indexeddb');
    expect(await installedFile('1.1.0')).toEqual({ size: v2.length, sha256: sha256(v2) });
    // IndexedDB chunks give no random-access staging, so the differential path is not taken there.
    const requests = modelRequests('1.1.0');
    expect(requests.map((r) => r.headers.range)).toEqual([undefined]);
    expect(requests[0]!.bytesSent).toBe(v2.length);
    expect((await announced()).at(-1)).toEqual({ size: v2.length, fetchBytes: v2.length });
    // Nothing could use the chunk indexes here, so the check did not ask for them.
    expect(world.server.requests.filter((r) => r.path.endsWith('manifest.chunks.json'))).toEqual([]);
    // readContent reads the Blob of v1's IndexedDB chunks, sliced.
    const slice = await page.evaluate(async (v1Sha) => [...(await (globalThis as any).updater.store.readContent(v1Sha, 1_048_000, 1000))], sha256(v1));
    expect(Buffer.from(slice).equals(v1.subarray(1_048_000, 1_049_000))).toBe(true);
  });
});
