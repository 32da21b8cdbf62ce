/**
 * Browser benchmark: in headless Chromium against nginx on loopback, the browser updater
 * (createBrowserModelUpdater: OPFS worker staging, install by rename) against a hand-written OPFS-worker
 * baseline (fetch -> transferred chunks -> dedicated worker -> sync access handle + hash-wasm), the two
 * taking turns in the same run, three runs each; medians.
 *
 *   npm run bench:browser                       # 256 MiB
 *   BENCH_BYTES=67108864 BENCH_RUNS=5 npm run bench:browser
 *
 * diskAfterBytes: `navigator.storage.estimate().usage` after the update minus before it (the site's
 * storage starts empty). rendererPeakMB: the peak resident memory (VmRSS in /proc, sampled every 20 ms)
 * of this page's renderer process, which also runs its dedicated workers, above its level just before
 * the update. JSHeapUsedSize (CDP Performance.getMetrics) is printed beside it: it leaves out
 * ArrayBuffers and the workers.
 * The last line printed is one JSON object:
 * {"bytes","updateSeconds","baselineSeconds","ratio","diskAfterBytes","rendererPeakMB"}.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { CDPSession, Page } from 'playwright-core';
import { publish } from '../src/publish/publish.js';
import { launchChromium, writeBrowserPage } from '../test/helpers/browserHarness.js';
import { startNginx } from '../test/helpers/nginx.js';

const MIB = 1024 * 1024;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bytes = Number(process.env.BENCH_BYTES ?? 256 * MIB);
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

interface Run {
  seconds: number;
  diskAfterBytes: number;
  rssPeakMB: number;
  heapPeakMB: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Pids of the renderer processes of the Chromium whose profile is `profile` (they carry its --user-data-dir). */
function rendererPids(profile: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // A zygote's child has its arguments rewritten as one string: split on spaces too.
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split(/[\0 ]/);
      if (args.includes('--type=renderer') && args.includes(`--user-data-dir=${profile}`) && !args.includes('--top-chrome-webui')) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function rssMB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Samples the renderers' RSS and the page's JS heap while `work` runs; peaks above the level before. */
async function measured(page: Page, cdp: CDPSession, profile: string, work: () => Promise<number>): Promise<Omit<Run, 'diskAfterBytes'>> {
  await cdp.send('HeapProfiler.collectGarbage');
  const pids = rendererPids(profile);
  if (pids.length === 0) throw new Error(`found no renderer process of ${profile} in /proc`);
  const rss = () => pids.reduce((sum, pid) => sum + rssMB(pid), 0);
  const heap = async () => ((await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0) / MIB;
  const rssBefore = rss();
  const heapBefore = await heap();
  let rssPeak = rssBefore;
  let heapPeak = heapBefore;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rssPeak = Math.max(rssPeak, rss());
      heapPeak = Math.max(heapPeak, await heap().catch(() => 0));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    const seconds = await work();
    return { seconds, rssPeakMB: rssPeak - rssBefore, heapPeakMB: heapPeak - heapBefore };
  } finally {
    sampling = false;
    await sampler;
    void page;
  }
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bench-browser-'));
  const site = path.join(tmp, 'site');
  const profile = path.join(tmp, 'profile');
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  let chrome: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    await mkdir(path.join(tmp, 'source'), { recursive: true });
    await writeFile(path.join(tmp, 'source', 'model.bin'), randomBytes(bytes));
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'source')] });
    await writeBrowserPage(path.join(site, 'app'));
    const baselineWorker = (
      await build({ entryPoints: [path.join(REPO, 'bench', 'browserBaselineWorker.ts')], bundle: true, write: false, format: 'iife', platform: 'browser', minify: true, logLevel: 'warning' })
    ).outputFiles[0]!.text;
    nginx = await startNginx({ root: site });
    chrome = await launchChromium(profile);
    const page = await chrome.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    // The test helper's nginx has no MIME types (a module script must be served as JavaScript): the page is
    // any document of the origin, and the bundle goes in inline.
    await page.goto(`${nginx.url}app/index.html`);
    await page.addScriptTag({ content: await readFile(path.join(site, 'app', 'mu.js'), 'utf8'), type: 'module' });
    await page.waitForFunction(() => (globalThis as any).mu !== undefined);
    // tsx names the functions of this file with a helper the page does not have.
    await page.evaluate('globalThis.__name = (f) => f');
    const cdp = await chrome.newCDPSession(page);
    await cdp.send('Performance.enable');
    const usage = () => page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
    const manifestUrl = `${nginx.url}manifest.json`;

    const updates: Run[] = [];
    const baselines: Run[] = [];
    for (let run = 0; run < runs; run++) {
      // Turns: neither side always runs right after the other.
      for (const side of run % 2 === 0 ? (['update', 'baseline'] as const) : (['baseline', 'update'] as const)) {
        const name = `${side}-${run}`;
        const before = await usage();
        let result: Omit<Run, 'diskAfterBytes'>;
        if (side === 'update') {
          await page.evaluate(
            async ({ manifestUrl, name }) => {
              const updater = (globalThis as any).mu.createBrowserModelUpdater({ manifestUrl, name, appVersion: '1.0.0', allowUnsigned: true, policy: { checkOnStart: false } });
              (globalThis as any).updater = updater;
              await updater.start();
              if (updater.store.backend !== 'opfs') throw new Error(`the updater uses ${updater.store.backend}: ${updater.store.backendReason}`);
            },
            { manifestUrl, name },
          );
          result = await measured(page, cdp, profile, () =>
            page.evaluate(async () => {
              const started = performance.now();
              const outcome = await (globalThis as any).updater.check();
              if (outcome.outcome !== 'activated') throw new Error(`update ${outcome.outcome}: ${outcome.error?.message}`);
              return (performance.now() - started) / 1000;
            }),
          );
        } else {
          result = await measured(page, cdp, profile, () =>
            page.evaluate(
              async ({ url, source, name }) => {
                const started = performance.now();
                const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
                const answer = (predicate: (data: any) => boolean) =>
                  new Promise<any>((resolve) => {
                    worker.onmessage = (event) => predicate(event.data) && resolve(event.data);
                  });
                const opened = answer((data) => data.opened);
                worker.postMessage({ op: 'open', name });
                await opened;
                const response = await fetch(url, { cache: 'no-store' });
                const reader = response.body!.getReader();
                for (;;) {
                  const { done, value } = await reader.read();
                  if (done) break;
                  worker.postMessage({ op: 'chunk', buffer: value.buffer, offset: value.byteOffset, length: value.byteLength }, [value.buffer]);
                }
                const finished = answer((data) => data.digest);
                worker.postMessage({ op: 'end' });
                await finished;
                worker.terminate();
                return (performance.now() - started) / 1000;
              },
              { url: `${nginx!.url}1.0.0/model.bin`, source: baselineWorker, name },
            ),
          );
        }
        const diskAfterBytes = (await usage()) - before;
        (side === 'update' ? updates : baselines).push({ ...result, diskAfterBytes });
        console.log(`${side} run ${run + 1}: ${result.seconds.toFixed(3)} s, disk +${(diskAfterBytes / MIB).toFixed(1)} MiB, renderer RSS peak +${result.rssPeakMB.toFixed(1)} MB, JS heap peak +${result.heapPeakMB.toFixed(1)} MB`);
        // Leave the site's storage empty for the next run.
        await page.evaluate(async ({ side, name }) => {
          if (side === 'update') {
            const updater = (globalThis as any).updater;
            updater.stop();
            await updater.store.clear();
            updater.store.close();
          } else {
            await (await navigator.storage.getDirectory()).removeEntry(name);
          }
        }, { side, name });
      }
    }
    const updateSeconds = median(updates.map((r) => r.seconds));
    const baselineSeconds = median(baselines.map((r) => r.seconds));
    const summary = {
      bytes,
      updateSeconds: Number(updateSeconds.toFixed(3)),
      baselineSeconds: Number(baselineSeconds.toFixed(3)),
      ratio: Number((updateSeconds / baselineSeconds).toFixed(3)),
      diskAfterBytes: Math.round(median(updates.map((r) => r.diskAfterBytes))),
      rendererPeakMB: Number(median(updates.map((r) => r.rssPeakMB)).toFixed(1)),
    };
    console.log(
      `median: update ${summary.updateSeconds} s, baseline ${summary.baselineSeconds} s; baseline renderer RSS peak +${median(baselines.map((r) => r.rssPeakMB)).toFixed(1)} MB; update JS heap peak +${median(updates.map((r) => r.heapPeakMB)).toFixed(1)} MB (os load ${os.loadavg()[0]!.toFixed(2)})`,
    );
    console.log(JSON.stringify(summary));
  } finally {
    await chrome?.close();
    await nginx?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
