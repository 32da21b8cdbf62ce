/**
 * Builds the browser example with esbuild for the browser platform: no Node built-ins, no polyfills.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { opfsWorkerPlugin } from '../../scripts/bundleBrowserWorker.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Writes index.html, main.js, receiver.html and receiver.js into `outDir`.
 * @example
 * await buildBrowserExample('/tmp/app')
 */
export async function buildBrowserExample(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'main.ts'), join(here, 'receiver.ts')],
    outdir: outDir,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
    // Bundled from the sources, the OPFS worker's script comes from this plugin (the npm package has it built in).
    plugins: [opfsWorkerPlugin()],
  });
  for (const page of ['index.html', 'receiver.html']) await copyFile(join(here, page), join(outDir, page));
}
