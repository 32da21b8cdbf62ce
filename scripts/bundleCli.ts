/**
 * Bundles the CLI (the package's `bin`) with esbuild: one module graph of ~200 files costs the ESM
 * loader about 0.15 s at every start, and the CLI starts once per update. Each command is its own chunk,
 * loaded only when it runs.
 *
 *   npm run build                # also runs this: writes dist/cli/
 *   tsx scripts/bundleCli.ts OUT # bundle into OUT instead
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_ENTRY = path.join(ROOT, 'src', 'cli', 'main.ts');

/** Bundles src/cli/main.ts into `outdir`/main.js (plus its chunks); returns that file's path. */
export async function bundleCli(outdir: string): Promise<string> {
  await build({
    entryPoints: { main: CLI_ENTRY },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'chunks/[name]-[hash]',
    // CommonJS dependencies (semver, ws) call require() for Node's built-ins: give ESM chunks one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return path.join(outdir, 'main.js');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await bundleCli(path.resolve(process.argv[2] ?? path.join(ROOT, 'dist', 'cli')));
  console.log(`bundled the CLI into ${path.relative(process.cwd(), out)}`);
}
