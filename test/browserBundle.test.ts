/**
 * The browser entry bundles for the browser platform with no Node built-in and no polyfill: esbuild
 * fails on any `node:` import reachable from it.
 */
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';
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
});
