/**
 * Real Chromium for browser-runtime tests and benchmarks: the browser entry (src/browser) bundled by
 * esbuild with the OPFS worker inlined (scripts/bundleBrowserWorker.ts), a page that exposes it as
 * `window.mu`, and Debian's Chromium through playwright-core with a profile of its own.
 *
 * @example
 * await writeBrowserPage(join(world.site, 'app'))
 * const chrome = await launchChromium(profile)
 * const page = await chrome.newPage(); await page.goto(`${world.server.url}app/index.html`)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type BrowserContext } from 'playwright-core';
import { opfsWorkerPlugin } from '../../scripts/bundleBrowserWorker.js';
import { CHROMIUM } from './systemPrograms.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Writes `dir`/index.html and `dir`/mu.js: the page sets `window.mu` to model-updater/browser and `body[data-ready]`. */
export async function writeBrowserPage(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await build({
    stdin: {
      contents: `import * as mu from './src/browser/index.ts'; globalThis.mu = mu; document.body.dataset.ready = 'true';`,
      resolveDir: ROOT,
      sourcefile: 'page.ts',
      loader: 'ts',
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: path.join(dir, 'mu.js'),
    plugins: [opfsWorkerPlugin()],
    logLevel: 'warning',
  });
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>model-updater</title><body><script type="module" src="mu.js"></script></body>\n');
}

/** Headless Chromium with a persistent profile (storage survives a reload and a new page). */
export function launchChromium(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
