/**
 * The browser entry bundles for the browser platform with no Node built-in and no polyfill: esbuild
 * fails on any `node:` import reachable from it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { bundleOpfsWorker } from '../scripts/bundleBrowserWorker.js';
import { describe, expect, it } from 'vitest';

describe('browser bundle', () => {
  it('src/browser bundles for platform "browser" without Node built-ins or the Node adapters', async () => {
    const result = await build({
      entryPoints: ['src/browser/index.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    }).catch((error: { errors?: Array<{ text: string; location?: { file: string } }> }) => {
      const problems = (error.errors ?? []).map((e) => `${e.location?.file ?? '?'}: ${e.text}`);
      throw new Error(`The browser entry pulls in Node-only code:\n${problems.join('\n')}`);
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((input) => /src\/node\/|fileEventLog|src\/cli\//.test(input))).toEqual([]);
  });

  it('the package exports a ./browser subpath built from src/browser', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8'));
    expect(pkg.exports['./browser']).toEqual({ types: './dist/src/browser/index.d.ts', default: './dist/src/browser/index.js' });
    expect(pkg.exports['.'].default).toBe('./dist/src/index.js');
  });

  it('the OPFS worker is one script with hash-wasm inside, which the build writes as the published opfsWorkerSource.js', async () => {
    const source = await bundleOpfsWorker();
    expect(source).not.toMatch(/\bimport\s*[{*("']|\brequire\(|importScripts/);
    expect(source).toContain('createSyncAccessHandle');
    const pkg = JSON.parse(await readFile('package.json', 'utf8'));
    expect(pkg.scripts.build).toContain('tsx scripts/bundleBrowserWorker.ts');
    const dir = await mkdtemp(join(tmpdir(), 'model-updater-worker-'));
    try {
      const out = join(dir, 'opfsWorkerSource.js');
      await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/bundleBrowserWorker.ts', out]);
      const published = (await import(pathToFileURL(out).href)) as { OPFS_WORKER_SOURCE: string };
      expect(published.OPFS_WORKER_SOURCE).toBe(source);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
