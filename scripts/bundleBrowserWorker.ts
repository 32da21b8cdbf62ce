/**
 * The OPFS worker (src/browser/opfsWorker.ts) as one self-contained script: esbuild bundles it with
 * hash-wasm, and the text is what src/browser/opfsWorkerSource.ts exports, so the published browser
 * entry starts its worker from a Blob URL and needs no second file (works from any static host and
 * through any bundler).
 *
 *   npm run build                        # also runs this: writes dist/src/browser/opfsWorkerSource.js
 *   esbuild.build({ plugins: [opfsWorkerPlugin()] })   # a bundle of src/browser with the worker inlined
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER_ENTRY = path.join(ROOT, 'src', 'browser', 'opfsWorker.ts');

/** The worker's bundled script (an IIFE for a classic worker). */
export async function bundleOpfsWorker(): Promise<string> {
  const result = await build({
    entryPoints: [WORKER_ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'warning',
  });
  return result.outputFiles[0]!.text;
}

/** The module that replaces src/browser/opfsWorkerSource.ts: the script as a string constant. */
export async function opfsWorkerModule(): Promise<string> {
  return `export const OPFS_WORKER_SOURCE = ${JSON.stringify(await bundleOpfsWorker())};\n`;
}

/**
 * An esbuild plugin for bundles made from the sources: src/browser/opfsWorkerSource.ts resolves to the
 * bundled worker instead of `undefined`.
 * @example
 * await build({ entryPoints: ['src/browser/index.ts'], bundle: true, plugins: [opfsWorkerPlugin()] })
 */
export function opfsWorkerPlugin(): Plugin {
  return {
    name: 'opfs-worker-source',
    setup(builder) {
      builder.onLoad({ filter: /[\\/]opfsWorkerSource\.(ts|js)$/ }, async () => ({ contents: await opfsWorkerModule(), loader: 'js' }));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'dist', 'src', 'browser', 'opfsWorkerSource.js'));
  await writeFile(out, await opfsWorkerModule());
  console.log(`bundled the OPFS worker into ${path.relative(process.cwd(), out)}`);
}
