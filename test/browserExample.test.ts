/**
 * The browser example's story, end to end in real headless Chromium (Debian's chromium through
 * playwright-core, no browser download), as its README walks it: the server starts with 1.0.0 only;
 * the page installs it; the page's button has the server publish 1.1.0, which installs (surviving a
 * reload in the middle of its download); then the bad 1.2.0, which is refused with a human message,
 * quarantined, and 1.1.0 kept. The page follows its log's end, shows an error when offline, keeps a
 * second tab out, opens an inspector, and its event log read back from IndexedDB verifies and replays.
 * Only the example's page and the public browser API are used: nothing reads the staging's storage.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowserExample } from '../examples/browser/build.js';
import { startExampleServer, STORY, type ExampleServer } from '../examples/browser/exampleServer.js';
import { replay } from '../src/core/log/replay.js';
import { type LogRecord } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { CHROMIUM, chromiumProgram } from './helpers/systemPrograms.js';

const chromiumAvailable = chromiumProgram();
let root: string;
let server: ExampleServer;
let context: BrowserContext;
let page: Page;
let pageUrl: string;

/** model.json (the weights as JSON) plus weights.bin (the filler) of a story step. */
const sizeOf = (version: string) => {
  const step = STORY.find((s) => s.version === version)!;
  return JSON.stringify(step.model).length + step.padBytes;
};
const mb = (bytes: number) => (bytes / 1_000_000).toFixed(1);

describe.skipIf(chromiumAvailable.skip)('browser example in Chromium', () => {
  beforeAll(async () => {
    chromiumAvailable.require();
    root = await mkdtemp(join(tmpdir(), 'model-updater-browser-e2e-'));
    await buildBrowserExample(join(root, 'app'));
    server = await startExampleServer({ root });
    context = await chromium.launchPersistentContext(join(root, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await context.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.stack ?? error.message}`));
    // A long back-off: after an interrupted download the page waits in downloading.retryWait until reloaded.
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
  const weightsRequests = (version: string) => server.files.requests.filter((r) => r.path === `/app/site/${version}/weights.bin`);

  async function openPage(): Promise<void> {
    await page.goto(pageUrl);
    await page.waitForSelector('body[data-ready="true"]');
  }

  it('starts with 1.0.0 only, and installs it', async () => {
    expect(server.status().published).toEqual(['1.0.0']);
    await openPage();
    await waitForText('#published', '1.0.0');
    await waitForText('#publish', 'Publish 1.1.0 on the server');
    await page.click('#check');
    await waitForText('#active', '1.0.0');
    await waitForText('#message', 'Installed 1.0.0: it passed its health check and now answers.');
    await waitForText('#prediction', '4.5');
    const size = mb(sizeOf('1.0.0'));
    await waitForText('#progress-text', `1.0.0: ${size} of ${size} MB (100 %)`);
  });

  it('publishes 1.1.0 from the page and installs it, resuming its download after a reload', async () => {
    await page.click('#publish');
    await waitForText('#published', '1.0.0, 1.1.0');
    await waitForText('#message', 'The server published 1.1.0. Click "Check for update".');
    expect(server.status().published).toEqual(['1.0.0', '1.1.0']);
    // The first response trickles (16 KiB every 40 ms): a download in progress long enough to reload in.
    const total = STORY[1]!.padBytes;
    server.files.fault('/app/site/1.1.0/weights.bin', { kind: 'trickle', bytes: 16 * 1024, intervalMs: 40, times: 1 });
    await page.click('#check');
    await waitForText('#state', 'downloading.fetching');
    await waitForText('#progress-text', /^1\.1\.0: \d\.\d of 4\.2 MB \(\d+ %\)$/);
    await expect.poll(() => page.locator('#progress').getAttribute('data-bytes').then(Number), { timeout: 20_000 }).toBeGreaterThanOrEqual(4 * 64 * 1024);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await waitForText('#active', '1.1.0');
    await waitForText('#message', 'Installed 1.1.0: it passed its health check and now answers.');
    // The restored chart ran the download again and asked only for the bytes it did not have.
    const requests = weightsRequests('1.1.0');
    expect(requests).toHaveLength(2);
    expect(requests[0]!.headers.range).toBeUndefined();
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(String(requests[1]!.headers.range))?.[1]);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThan(total);
    expect(requests[1]!.status).toBe(206);
    expect(requests[1]!.bytesSent).toBe(total - resumedFrom);
  });

  it('refuses the bad 1.2.0 with a message a person reads, quarantines it and keeps 1.1.0', async () => {
    await page.click('#publish');
    await waitForText('#published', '1.0.0, 1.1.0, 1.2.0');
    await waitForText('#publish', 'Everything is published');
    await page.click('#check');
    await waitForText('#result', /^rolled-back 1\.2\.0 HEALTH_CHECK_FAILED$/);
    await waitForText('#message', /^1\.2\.0 was refused: The health check of version 1\.2\.0 threw: for the golden input 1, 2, 3 it answers 54, not 4\.5\. 1\.1\.0 is still active\.$/);
    await waitForText('#active', '1.1.0');
    await waitForText('#prediction', '4.5');
    await waitForText('#quarantine', /^1\.2\.0: its health check failed \(HEALTH_CHECK_FAILED, left 1 time\)/);
    // Checked again, the quarantined build is not taken again.
    await page.click('#check');
    await waitForText('#message', 'Up to date: the server offers nothing newer than 1.1.0 (versions refused here are not taken again).');
    await waitForText('#active', '1.1.0');
  });

  it('shows the end of its event log as it grows', async () => {
    await waitForText('#log', /manifest\.unchanged|up-to-date|check\.completed/);
    const scroll = await page.locator('#log').evaluate((log) => ({ top: log.scrollTop, height: log.scrollHeight, visible: log.clientHeight }));
    expect(scroll.height).toBeGreaterThan(scroll.visible); // more lines than fit: it has to follow
    expect(scroll.top + scroll.visible).toBeGreaterThanOrEqual(scroll.height - 1);
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
    await waitForText('#events', /@xstate\.snapshot "(rolledBack|active)"/, popup);
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
    expect(snapshot.context.active?.version).toBe('1.1.0');
    expect(snapshot.context.quarantine.map((q) => q.version)).toEqual(['1.2.0']);
    // Two page loads (the reload continued the same log) and three downloads: 1.0.0, 1.1.0 (resumed), 1.2.0.
    expect(records.filter((r) => r.type === 'updater.started')).toHaveLength(2);
    expect(records.filter((r) => r.type === 'download.completed')).toHaveLength(3);
  });

  it('says so when it is offline, and the check cannot reach the server', async () => {
    await context.setOffline(true);
    try {
      await expect.poll(() => page.locator('#offline').isVisible(), { timeout: 20_000 }).toBe(true);
      await page.click('#check');
      await waitForText('#state', 'idle.deferred');
      await waitForText('#message', /^You are offline: the check could not reach the update server\./);
      await waitForText('#active', '1.1.0');
    } finally {
      await context.setOffline(false);
    }
    await expect.poll(() => page.locator('#offline').isVisible(), { timeout: 20_000 }).toBe(false);
  });
});
