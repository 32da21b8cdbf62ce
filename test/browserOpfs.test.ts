/**
 * The browser runtime in real headless Chromium: model bytes written into the Origin Private File
 * System by the OPFS worker (and, forced with `opfs: false`, into IndexedDB chunks), served from the
 * loopback test server. One copy on disk after the switch, resume after a reload, writes at any offset,
 * a 400 MiB quota set through the DevTools protocol that `navigator.storage.estimate()` does not show,
 * rollback, and two tabs.
 */
import { randomBytes, createHash } from 'node:crypto';
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
let world: World;
let profile: string;
let pageDir: string;
let chrome: BrowserContext;
let page: Page;
let caseNumber = 0;
let name: string;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Options every page's updater gets: a back-off long enough that a failed attempt waits for the reload. */
const BASE = { appVersion: '1.0.0', allowUnsigned: true, policy: { checkOnStart: false }, retry: { baseDelayMs: 600_000, maxDelayMs: 600_000 } };

async function openPage(target: Page = page): Promise<void> {
  await target.goto(`${world.server.url}app/index.html`);
  await target.waitForSelector('body[data-ready="true"]', { state: 'attached' });
}

/** Runs in the page: creates `window.updater` (options merged over BASE) and starts it. */
async function startUpdater(target: Page, options: Record<string, unknown> = {}): Promise<{ backend: string; reason?: string }> {
  return target.evaluate(
    async ({ manifestUrl, name, options }) => {
      const mu = (globalThis as any).mu;
      const updater = mu.createBrowserModelUpdater({ manifestUrl, name, ...options });
      (globalThis as any).updater = updater;
      await updater.start();
      return { backend: updater.store.backend, reason: updater.store.backendReason };
    },
    { manifestUrl: world.manifestUrl, name, options: { ...BASE, ...options } },
  );
}

/** Runs check() in the page and answers its result (an error as its code and message). */
function check(target: Page = page): Promise<{ outcome: string; version: string | null; error: { code: string; message: string } | null }> {
  return target.evaluate(async () => {
    const result = await (globalThis as any).updater.check();
    return { outcome: result.outcome, version: result.version, error: result.error && { code: result.error.code, message: result.error.message } };
  });
}

/** SHA-256 and size of an installed file read through openFile(), and whether it is an OPFS File. */
function installedFile(version: string, path = 'model.bin', target: Page = page) {
  return target.evaluate(
    async ({ version, path }) => {
      const blob: Blob = await (globalThis as any).updater.store.openFile(version, path);
      const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
      return { size: blob.size, isFile: blob instanceof File, sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') };
    },
    { version, path },
  );
}

const usage = (target: Page = page) => target.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);

/** Bytes of the OPFS file of a download in progress. */
function stagedInOpfs(version: string, path = 'model.bin'): Promise<number> {
  return page.evaluate(
    async ({ name, version, path }) => {
      try {
        let dir = await navigator.storage.getDirectory();
        for (const part of ['model-updater', encodeURIComponent(name), 'staging', encodeURIComponent(version)]) dir = await dir.getDirectoryHandle(part);
        return (await (await dir.getFileHandle(encodeURIComponent(path))).getFile()).size;
      } catch {
        return 0;
      }
    },
    { name, version, path },
  );
}

/**
 * Grows (or shrinks) a file outside the store to `bytes`, taking that much of the site's quota; 'all':
 * to the largest size the browser takes (to a MiB).
 */
function fillQuota(bytes: number | 'all'): Promise<string> {
  return page.evaluate(async (bytes: number | 'all') => {
    const source = `onmessage = async (event) => {
      const root = await navigator.storage.getDirectory();
      const handle = await (await root.getFileHandle('filler', { create: true })).createSyncAccessHandle();
      const fits = (n) => { try { handle.truncate(n); return true } catch (error) { if (error.name !== 'QuotaExceededError') throw error; return false } };
      try {
        if (event.data !== 'all') { postMessage(fits(event.data) ? 'ok' : 'QuotaExceededError'); return }
        let low = handle.getSize(), high = 1 << 30;
        while (high - low > 1 << 20) { const middle = Math.floor((low + high) / 2); if (fits(middle)) low = middle; else high = middle }
        fits(low);
        postMessage('ok');
      } catch (error) { postMessage(error.name) } finally { handle.close() }
    }`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
    const answer = await new Promise<string>((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage(bytes);
    });
    worker.terminate();
    return answer;
  }, bytes);
}

/** The updater is waiting out its back-off after a failed download attempt. */
const waitingToRetry = () => page.evaluate(() => JSON.stringify((globalThis as any).updater.getSnapshot().value).includes('retryWait'));

const modelRequests = (version: string) => world.server.requests.filter((r) => r.path === `/${version}/model.bin`);

beforeAll(async () => {
  if (chromium.skip) return;
  chromium.require();
  profile = await mkdtemp(join(tmpdir(), 'model-updater-opfs-profile-'));
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
  name = `case-${++caseNumber}`;
  // A server of its own per test: a new origin, so storage and quota start empty.
  world = await createWorld();
  await cp(pageDir, join(world.site, 'app'), { recursive: true });
  page = await chrome.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.stack ?? error.message}`));
  await openPage();
  return async () => {
    await page.evaluate(() => (globalThis as any).updater?.stop()).catch(() => undefined);
    await page.close();
    await world.close();
  };
});

describe.skipIf(chromium.skip)('browser runtime in Chromium: OPFS worker', () => {
  it('installs into OPFS, hands the File itself, and after the switch holds each version once', async () => {
    const v1 = randomBytes(8 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': v1 } });
    const before = await usage();
    expect(await startUpdater(page)).toEqual({ backend: 'opfs' });
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(await installedFile('1.0.0')).toEqual({ size: v1.length, isFile: true, sha256: sha256(v1) });
    const once = (await usage()) - before;
    expect(once).toBeGreaterThanOrEqual(v1.length);
    expect(once).toBeLessThan(v1.length * 1.05);

    const v2 = randomBytes(8 * MiB);
    await world.publishVersion('1.1.0', { files: { 'model.bin': v2 } });
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(await installedFile('1.1.0')).toMatchObject({ sha256: sha256(v2) });
    // The new version and the one kept for rollback, each once: nothing staged is left.
    const twice = (await usage()) - before;
    expect(twice).toBeLessThan((v1.length + v2.length) * 1.05);
    expect(await page.evaluate(() => (globalThis as any).updater.store.stagedBytes('1.1.0'))).toBe(0);

    // The start is logged with whether persistent storage was granted.
    const started = await page.evaluate(() => (globalThis as any).updater.log.records().find((r: any) => r.type === 'updater.started').data);
    expect(typeof started.storagePersisted).toBe('boolean');
  });

  it('resumes a download after a reload from the bytes and hash state the worker left, with Range', async () => {
    const content = randomBytes(12 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': content } });
    world.server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 5 * MiB + 1234, times: 1 });
    await startUpdater(page);
    // Never settles in this page: the reload ends it.
    void page.evaluate(() => (globalThis as any).updater.check()).catch(() => undefined);
    // The connection dropped and the updater waits out its back-off: the page is reloaded then.
    await expect.poll(() => waitingToRetry(), { timeout: 20_000 }).toBe(true);
    const kept = await stagedInOpfs('1.0.0');
    expect(kept).toBeGreaterThan(0);
    await openPage();
    await startUpdater(page);
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    const [first, resumed] = modelRequests('1.0.0');
    expect(first!.headers.range).toBeUndefined();
    expect(resumed!.headers.range).toBe(`bytes=${kept}-`);
    expect(resumed!.status).toBe(206);
    expect(await installedFile('1.0.0')).toMatchObject({ sha256: sha256(content) });
  });

  it('writes at any offset through openRandomAccess and reads the bytes back', async () => {
    await startUpdater(page);
    const result = await page.evaluate(async () => {
      const staging = (globalThis as any).updater.store.staging;
      const file = { version: 'ra', path: 'weights/part.bin' };
      const out = await staging.openRandomAccess(file, 3 * 65536);
      const piece = (fill: number) => new Uint8Array(65536).fill(fill);
      // Out of order, and the caller reuses its buffer at once.
      const reused = piece(3);
      const third = out.write(2 * 65536, reused);
      reused.fill(9);
      await third;
      await out.write(0, piece(1));
      await out.write(65536, piece(2));
      const read = await out.read(65536 - 2, 4);
      const tail = await out.read(3 * 65536 - 2, 100);
      await out.close({ sync: true });
      const size = await staging.size(file);
      await staging.remove(file);
      return { read: [...read], tail: [...tail], size, after: await staging.size(file) };
    });
    expect(result).toEqual({ read: [1, 1, 2, 2], tail: [3, 3], size: 3 * 65536, after: 0 });
  });

  it('hashes in the worker exactly what the caller hashed, also when that is not what it writes, and holds the network back while buffers are out', async () => {
    await startUpdater(page);
    const digests = await page.evaluate(async () => {
      const staging = (globalThis as any).updater.store.staging;
      const file = { version: 'hash', path: 'model.bin' };
      const hash = await staging.createHash();
      let drains = 0;
      const writer = await staging.open(file, { position: 0, hash, onDrain: () => drains++, onError: () => undefined });
      const a = new Uint8Array(3 * 1024 * 1024).fill(7);
      const b = new Uint8Array(1000).fill(8);
      // In step (downloadFile's way), then in two updates and one write, then an update that is never written.
      const taken: boolean[] = [];
      hash.update(a);
      taken.push(writer.write(a));
      hash.update(b);
      hash.update(a);
      const both = new Uint8Array(b.length + a.length);
      both.set(b);
      both.set(a, b.length);
      // Six buffers out at the worker: more than it takes at once, so the writer says wait.
      taken.push(writer.write(both));
      hash.update(b);
      await writer.finish({ sync: true });
      const hex = async (bytes: Uint8Array<ArrayBuffer>) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((x) => x.toString(16).padStart(2, '0')).join('');
      const expected = new Uint8Array(2 * a.length + 2 * b.length);
      expected.set(a);
      expected.set(b, a.length);
      expected.set(a, a.length + b.length);
      expected.set(b, 2 * a.length + b.length);
      const size = await staging.size(file);
      await staging.remove(file);
      return { worker: hash.digest(), expected: await hex(expected), size, taken, drains };
    });
    expect(digests.worker).toBe(digests.expected);
    // Back-pressure: the second write asked the network to wait, and the worker's replies let it go on.
    expect(digests.taken).toEqual([true, false]);
    expect(digests.drains).toBe(1);
    expect(digests.size).toBe(2 * 3 * MiB + 1000);
  });

  it('fails before the first byte under a 400 MiB quota that estimate() does not show, saying how much is needed', async () => {
    await world.publishVersion('1.0.0', { files: { 'model.bin': randomBytes(64 * MiB) } });
    const cdp = await chrome.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(world.server.url).origin, quotaSize: 400 * MiB });
    try {
      expect(await fillQuota(360 * MiB)).toBe('ok');
      // What the browser says is not the cap.
      expect(await page.evaluate(async () => (await navigator.storage.estimate()).quota)).toBeGreaterThan(1024 * MiB);
      await startUpdater(page);
      const result = await check();
      expect(result).toMatchObject({ outcome: 'failed', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
      expect(result.error!.message).toMatch(/needs 68\.\d MB free .* only \d+\.\d MB is available/);
      expect(modelRequests('1.0.0')).toEqual([]);
    } finally {
      await fillQuota(0);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(world.server.url).origin });
    }
  });

  it('fails as soon as a write is refused, keeps the partial, and resumes it once there is room', async () => {
    const content = randomBytes(12 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': content } });
    // One MiB every half second: the site's storage fills up while the download runs.
    world.server.fault('/1.0.0/model.bin', { kind: 'trickle', bytes: MiB, intervalMs: 500, times: 1 });
    const cdp = await chrome.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(world.server.url).origin, quotaSize: 400 * MiB });
    try {
      expect(await fillQuota(360 * MiB)).toBe('ok');
      await startUpdater(page);
      const checking = check();
      await expect.poll(() => stagedInOpfs('1.0.0'), { timeout: 20_000 }).toBeGreaterThanOrEqual(MiB);
      expect(await fillQuota('all')).toBe('ok');
      const result = await checking;
      expect(result).toMatchObject({ outcome: 'failed', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
      expect(result.error!.message).toMatch(/quota is used up after \d+\.\d MB\. \d+\.\d MB more is needed for this file \(12\.0 MB in all\)\. Free that much/);
      const kept = await stagedInOpfs('1.0.0');
      expect(kept).toBeGreaterThanOrEqual(MiB);

      await fillQuota(0);
      expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
      const resumed = modelRequests('1.0.0').at(-1)!;
      expect(resumed.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
      expect(resumed.status).toBe(206);
      expect(await installedFile('1.0.0')).toMatchObject({ sha256: sha256(content) });
    } finally {
      await fillQuota(0);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(world.server.url).origin });
    }
  });

  it('rolls back to the kept version, whose OPFS file is still there', async () => {
    const v1 = randomBytes(2 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': v1 } });
    await startUpdater(page);
    await check();
    await world.publishVersion('1.1.0', { files: { 'model.bin': randomBytes(2 * MiB) } });
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    const rolled = await page.evaluate(async () => {
      const result = await (globalThis as any).updater.rollback();
      return { outcome: result.outcome, version: result.version };
    });
    expect(rolled).toEqual({ outcome: 'rolled-back', version: '1.0.0' });
    expect(await installedFile('1.0.0')).toMatchObject({ sha256: sha256(v1), isFile: true });
  });

  it('lets one tab update at a time; the other reads the same OPFS file after it stops', async () => {
    const content = randomBytes(2 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': content } });
    await startUpdater(page);
    const second = await chrome.newPage();
    try {
      await openPage(second);
      const refused = await second.evaluate(
        async ({ manifestUrl, name, options }) => {
          const updater = (globalThis as any).mu.createBrowserModelUpdater({ manifestUrl, name, ...options });
          (globalThis as any).updater = updater;
          return updater.start().then(
            () => 'started',
            (error: { code: string }) => error.code,
          );
        },
        { manifestUrl: world.manifestUrl, name, options: BASE },
      );
      expect(refused).toBe('LOCKED');
      expect(await check()).toMatchObject({ outcome: 'activated' });
      await page.evaluate(() => (globalThis as any).updater.stop());
      await startUpdater(second);
      expect(await installedFile('1.0.0', 'model.bin', second)).toMatchObject({ sha256: sha256(content), isFile: true });
    } finally {
      await second.evaluate(() => (globalThis as any).updater?.stop()).catch(() => undefined);
      await second.close();
    }
  });
});

describe.skipIf(chromium.skip)('browser runtime in Chromium: IndexedDB fallback', () => {
  it('without OPFS keeps chunks that become the installed file without a copy, and releases them after the next switch', async () => {
    const v1 = randomBytes(8 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': v1 } });
    const before = await usage();
    expect(await startUpdater(page, { opfs: false })).toEqual({ backend: 'indexeddb', reason: 'OPFS was turned off (opfs: false)' });
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(await installedFile('1.0.0')).toMatchObject({ size: v1.length, isFile: false, sha256: sha256(v1) });
    expect((await usage()) - before).toBeLessThan(v1.length * 1.05);

    for (const version of ['1.1.0', '1.2.0']) {
      await world.publishVersion(version, { files: { 'model.bin': randomBytes(8 * MiB) } });
      expect(await check()).toMatchObject({ outcome: 'activated', version });
    }
    // 1.2.0 active, 1.1.0 kept: 1.0.0's chunks are gone. Chromium deletes an IndexedDB blob's file a few
    // seconds after its record, once no page object refers to it (the Blob read above, until collected).
    const cdp = await chrome.newCDPSession(page);
    await expect
      .poll(
        async () => {
          await cdp.send('HeapProfiler.collectGarbage');
          return (await usage()) - before;
        },
        { timeout: 25_000, interval: 1000 },
      )
      .toBeLessThan(2 * 8 * MiB * 1.05);
    await expect(page.evaluate(() => (globalThis as any).updater.store.openFile('1.0.0', 'model.bin').then(() => 'found', (e: { code: string }) => e.code))).resolves.toBe('STORAGE_FAILED');
  });

  it('resumes after a reload from the persisted chunks', async () => {
    const content = randomBytes(6 * MiB);
    await world.publishVersion('1.0.0', { files: { 'model.bin': content } });
    world.server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 3 * MiB + 77, times: 1 });
    await startUpdater(page, { opfs: false });
    // Never settles in this page: the reload ends it.
    void page.evaluate(() => (globalThis as any).updater.check()).catch(() => undefined);
    await expect.poll(() => waitingToRetry(), { timeout: 20_000 }).toBe(true);
    await openPage();
    expect(await startUpdater(page, { opfs: false })).toMatchObject({ backend: 'indexeddb' });
    expect(await check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    const resumed = modelRequests('1.0.0').at(-1)!;
    expect(resumed.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(resumed.status).toBe(206);
    expect(await installedFile('1.0.0')).toMatchObject({ sha256: sha256(content) });
  });

  it('falls back by itself where workers have no sync access handles', async () => {
    await page.evaluate(() => {
      // What an older browser offers: OPFS directories, no createSyncAccessHandle (the worker sees the same prototype deleted).
      const original = Worker;
      (globalThis as any).Worker = class extends original {
        constructor(url: string | URL, options?: WorkerOptions) {
          const patched = URL.createObjectURL(new Blob([`delete FileSystemFileHandle.prototype.createSyncAccessHandle; importScripts(${JSON.stringify(String(url))});`], { type: 'text/javascript' }));
          super(patched, options);
        }
      };
    });
    const chosen = await startUpdater(page);
    expect(chosen).toEqual({ backend: 'indexeddb', reason: 'no sync access handles in this browser' });
  });
});
