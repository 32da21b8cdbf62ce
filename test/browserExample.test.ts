/**
 * End to end in real headless Chromium (Debian's /usr/bin/chromium through playwright-core, no browser
 * download): the browser example served from 127.0.0.1 installs a model into IndexedDB, is reloaded in
 * the middle of a download and resumes it, rolls back a version with wrong weights, refuses a second tab,
 * opens an inspector, and its event log read back from IndexedDB verifies and replays.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowserExample } from '../examples/browser/build.js';
import { GOOD_MODEL } from '../examples/browser/model.js';
import { publishModel } from '../examples/browser/publishDemo.js';
import { replay } from '../src/core/log/replay.js';
import { type LogRecord } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const CHROMIUM = '/usr/bin/chromium';
let root: string;
let site: string;
let server: TestServer;
let context: BrowserContext;
let page: Page;
let pageUrl: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it).`);
  root = await mkdtemp(join(tmpdir(), 'model-updater-browser-e2e-'));
  await buildBrowserExample(join(root, 'app'));
  site = join(root, 'app', 'site');
  server = await startTestServer({ root });
  context = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--headless'],
  });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.stack ?? error.message}`));
  // A long back-off: after the dropped connection the page waits in downloading.retryWait until reloaded.
  pageUrl = `${server.url}app/index.html?name=e2e&retryDelayMs=600000&inspector=receiver.html`;
}, 60_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const text = (selector: string, target: Page = page) => target.locator(selector).textContent();
const waitForText = (selector: string, expected: string | RegExp, target: Page = page) =>
  expect.poll(() => text(selector, target), { timeout: 20_000 }).toMatch(expected);
const weightsRequests = (version: string) => server.requests.filter((r) => r.path === `/app/site/${version}/weights.bin`);

/** Runs in the page: bytes stored so far for one file of a download in progress. */
function stagedBytes([name, version, path]: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(`model-updater:${name}:files`);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const range = IDBKeyRange.bound(['s', version, path], ['s', version, path, []]);
      const request = open.result.transaction('files').objectStore('files').getAll(range);
      request.onsuccess = () => {
        open.result.close();
        // Chunks carry a Blob; the resume record stored beside them does not.
        resolve((request.result as Array<{ blob?: Blob }>).reduce((sum, value) => sum + (value.blob?.size ?? 0), 0));
      };
    };
  });
}

async function openPage(): Promise<void> {
  await page.goto(pageUrl);
  await page.waitForSelector('body[data-ready="true"]');
}

describe('browser example in Chromium', () => {
  it('installs the first version into IndexedDB and answers the golden input', async () => {
    await publishModel(site, '1.0.0', GOOD_MODEL, 64 * 1024);
    await openPage();
    await page.click('#check');
    await waitForText('#active', '1.0.0');
    await waitForText('#prediction', '4.5');
    await waitForText('#progress-text', `1.0.0: ${64 * 1024 + JSON.stringify(GOOD_MODEL).length} / `);
  });

  it('survives a reload in the middle of a download and resumes from the stored bytes', async () => {
    await publishModel(site, '1.1.0', { w: [1, 0.5, 0], b: 2.5 }, 300_000);
    // The first response sends 150,000 bytes and then holds the connection open: a download in progress.
    server.fault('/app/site/1.1.0/weights.bin', { kind: 'hang-after', bytes: 150_000, times: 1 });
    await page.click('#check');
    await waitForText('#state', 'downloading.fetching');
    // Wait until the page has stored part of the file (in 64 KiB chunks), then reload mid-download.
    await expect.poll(() => page.evaluate(stagedBytes, ['e2e', '1.1.0', 'weights.bin']), { timeout: 20_000 }).toBeGreaterThanOrEqual(64 * 1024);
    const stored = await page.evaluate(stagedBytes, ['e2e', '1.1.0', 'weights.bin']);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await waitForText('#active', '1.1.0');
    await waitForText('#prediction', '4.5');
    // The restored chart ran the download again; it asked only for the bytes it did not have.
    const requests = weightsRequests('1.1.0');
    expect(requests).toHaveLength(2);
    expect(requests[0]!.headers.range).toBeUndefined();
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(String(requests[1]!.headers.range))?.[1]);
    expect(resumedFrom).toBeGreaterThanOrEqual(stored);
    expect(resumedFrom).toBeLessThanOrEqual(150_000);
    expect(requests[1]!.status).toBe(206);
    expect(requests[1]!.bytesSent).toBe(300_000 - resumedFrom);
    await waitForText('#log', /download\.completed/);
  });

  it('rolls back a version whose weights fail the health check', async () => {
    await publishModel(site, '1.2.0', { w: [9, 9, 9], b: 0 }, 1024);
    await page.click('#check');
    await waitForText('#result', /^rolled-back 1\.2\.0 HEALTH_CHECK_FAILED$/);
    await waitForText('#active', '1.1.0');
    await waitForText('#prediction', '4.5');
    await waitForText('#log', /HEALTH_CHECK_FAILED/);
  });

  it('keeps a second tab out with the Web Lock', async () => {
    const second = await context.newPage();
    await second.goto(pageUrl);
    await second.waitForSelector('body[data-ready="false"]');
    expect(await text('#result', second)).toMatch(/^error LOCKED: /);
    await second.close();
  });

  it('opens an inspector and replays the log into it', async () => {
    const [popup] = await Promise.all([context.waitForEvent('page'), page.click('#inspect')]);
    await waitForText('#events', /@xstate\.snapshot "rolledBack"/, popup);
    await waitForText('#events', /@xstate\.event CHECK/, popup);
    await popup.close();
  });

  it('leaves an event log in IndexedDB, one key per record, that verifies and replays to the page state', async () => {
    const stored = await page.evaluate(
      () =>
        new Promise<{ keys: IDBValidKey[]; records: unknown[] }>((resolve, reject) => {
          const open = indexedDB.open('model-updater:e2e:log');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const store = open.result.transaction('records').objectStore('records');
            const keys = store.getAllKeys();
            const records = store.getAll();
            records.onsuccess = () => resolve({ keys: keys.result, records: records.result });
          };
        }),
    );
    const records = stored.records as LogRecord[];
    expect(stored.keys).toEqual(records.map((r) => r.seq));
    expect(verifyLog(records)).toMatchObject({ ok: true, count: records.length });
    const snapshot = replay(records)!;
    expect(snapshot.value).toBe('rolledBack');
    expect(snapshot.context.active?.version).toBe('1.1.0');
    // Two page loads (the reload continued the same log) and three downloads: 1.0.0, 1.1.0 (resumed), 1.2.0.
    expect(records.filter((r) => r.type === 'updater.started')).toHaveLength(2);
    expect(records.filter((r) => r.type === 'download.completed')).toHaveLength(3);
  });
});
