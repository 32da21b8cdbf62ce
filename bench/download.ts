/**
 * Download benchmark: a full `update` of one big file against the best off-the-shelf sequential path
 * (curl to a file, then a streamed SHA-256 of it), both from the same loopback server in the same run.
 *
 *   npx tsx bench/download.ts            # 1 GiB
 *   BENCH_BYTES=268435456 npx tsx bench/download.ts
 *   BENCH_RUNS=6 npx tsx bench/download.ts   # best of 6 for each side (default 4: page-cache noise is large)
 *   BENCH_UPDATE=download npx tsx bench/download.ts   # (b) = downloadFile() alone instead of the CLI
 *   BENCH_CLI=/tmp/old/main.js npx tsx bench/download.ts  # (b) = that bundle (tsx scripts/bundleCli.ts OUT), to compare versions
 *   BENCH_TRANSPORT=node-http npx tsx bench/download.ts   # (b) = downloadFile() alone over the node:http fallback
 *                                                         # (BENCH_TRANSPORT=direct: alone, over the direct transport)
 *   BENCH_DEBUG=1 ...                                  # also print every run and what each (b) child reported
 *
 * Times are the best of the runs (the medians are printed too); peak RSS is the highest of them. The
 * two sides take turns going first, so neither always inherits the other's aftermath: at times on this
 * VM the update ran much slower right after the curl run than right after its own (2.4-3.6 s against
 * 1.5-1.7 s), while curl did not care which came before.
 * The server runs in a child process (this file with --serve), like curl and (b), so each side of the
 * comparison has the same CPUs to share. (b) is the CLI bundled from the current source the way
 * `npm run build` bundles it, or downloadFile() in a plain-node child (see runUpdate).
 * The last line printed is one JSON object: {"bytes","baselineSeconds","updateSeconds","ratio","peakRssMB"}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bundleCli } from '../scripts/bundleCli.js';
import { startTestServer } from '../test/helpers/testServer.js';

const MIB = 1024 * 1024;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The package's bin, as users run it (`npm run build` makes it). */
/** The CLI as `npm run build` bundles it, made from the current source into the bench's folder: a
 * dist/ left from an earlier build would measure old code. */
let CLI = '';

interface Measured {
  seconds: number;
  peakRssMB: number;
  what: string;
}

if (process.argv[2] === '--serve') {
  await serveUntilStdinCloses(process.argv[3] ?? '.');
} else {
  await main();
}

async function main(): Promise<void> {
  const bytes = Number(process.env.BENCH_BYTES ?? 1024 * MIB);
  const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 4));
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`BENCH_BYTES must be a positive integer, got ${process.env.BENCH_BYTES}`);

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bench-'));
  let server: ChildProcess | undefined;
  try {
    if (useCli()) CLI = process.env.BENCH_CLI ? path.resolve(process.env.BENCH_CLI) : await bundleCli(path.join(tmp, 'cli'));
    const root = path.join(tmp, 'site');
    await mkdir(root);

    let source: string;
    let manifestPath: string;
    const started = performance.now();
    if (useCli()) {
      source = path.join(tmp, 'model.bin');
      await generate(source, bytes);
      await run(process.execPath, [CLI, 'publish', '--out', root, '--version', '1.0.0', source]);
      manifestPath = path.join(root, 'manifest.json');
      if (!existsSync(manifestPath)) throw new Error(`publish did not write ${manifestPath}; update the bench to the CLI's layout`);
    } else {
      source = path.join(root, '1.0.0', 'model.bin');
      await mkdir(path.dirname(source));
      const sha256 = await generate(source, bytes);
      manifestPath = path.join(root, 'manifest.json');
      const manifest = {
        schemaVersion: 1,
        modelId: 'bench',
        versions: [{ version: '1.0.0', channel: 'stable', files: [{ path: 'model.bin', size: bytes, sha256, url: '1.0.0/model.bin' }] }],
      };
      await writeFile(manifestPath, JSON.stringify(manifest));
    }
    console.log(`prepared ${formatBytes(bytes)} in ${seconds(performance.now() - started).toFixed(2)} s (${tmp})`);

    const { child, url } = await startServerProcess(root);
    server = child;
    const manifestUrl = new URL('manifest.json', url).href;
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as BenchManifest;
    const file = manifest.versions[0]?.files[0];
    if (file === undefined) throw new Error(`${manifestPath} lists no file`);
    const fileUrl = new URL(file.url, manifestUrl).href;

    let baseline = Infinity;
    let update: Measured | undefined;
    const baselineRuns: number[] = [];
    const updateRuns: number[] = [];
    let peakRssMB = 0;
    for (let i = 0; i < runs; i++) {
      // Each side goes first in every other run, so neither always inherits the other's aftermath
      // (a 1 GiB file just deleted, its pages just freed).
      const sides = [
        async () => (baselineRun = await runBaseline(fileUrl, path.join(tmp, 'curl.bin'), file.sha256)),
        async () => {
          const dir = path.join(tmp, `update-${i}`);
          await mkdir(dir);
          updateRun = await runUpdate(manifestUrl, dir);
          await rm(dir, { recursive: true, force: true });
        },
      ];
      let baselineRun = Infinity;
      let updateRun: Measured | undefined;
      for (const side of i % 2 === 0 ? sides : sides.reverse()) await side();
      if (updateRun === undefined) throw new Error('the update side did not run');
      if (process.env.BENCH_DEBUG) console.error(`run ${i}: (a) ${baselineRun.toFixed(3)} s, (b) ${updateRun.seconds.toFixed(3)} s${i % 2 ? ', (b) first' : ''}`);
      baseline = Math.min(baseline, baselineRun);
      baselineRuns.push(baselineRun);
      updateRuns.push(updateRun.seconds);
      if (update === undefined || updateRun.seconds < update.seconds) update = updateRun;
      peakRssMB = Math.max(peakRssMB, updateRun.peakRssMB);
    }
    if (update === undefined) throw new Error('no run');

    const ratio = update.seconds / baseline;
    console.log(`(a) curl -o + SHA-256:   ${baseline.toFixed(3)} s  ${formatRate(bytes, baseline)}  (median of ${runs}: ${median(baselineRuns).toFixed(3)} s)`);
    console.log(`(b) ${update.what}: ${update.seconds.toFixed(3)} s  ${formatRate(bytes, update.seconds)}  (median of ${runs}: ${median(updateRuns).toFixed(3)} s)`);
    console.log(`b/a: ${ratio.toFixed(3)}  (target <= 1.0)   peak RSS of (b): ${peakRssMB.toFixed(1)} MB  (target <= 100)`);
    console.log(
      JSON.stringify({
        bytes,
        baselineSeconds: round(baseline),
        updateSeconds: round(update.seconds),
        ratio: round(ratio),
        peakRssMB: round(peakRssMB, 1),
      }),
    );
  } finally {
    server?.stdin?.end();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** BENCH_UPDATE=download (or a BENCH_TRANSPORT) measures downloadFile() alone even when the CLI is built. */
function useCli(): boolean {
  return process.env.BENCH_UPDATE !== 'download' && process.env.BENCH_TRANSPORT === undefined;
}

/** Which Node transport (b) uses when it runs downloadFile() alone: the direct one (default) or node:http. */
function transportName(): 'direct' | 'node-http' {
  const name = process.env.BENCH_TRANSPORT ?? 'direct';
  if (name !== 'direct' && name !== 'node-http') throw new Error(`BENCH_TRANSPORT must be direct or node-http, got ${name}`);
  return name;
}

interface BenchManifest {
  versions: Array<{ version: string; files: Array<{ path: string; size: number; sha256: string; url: string }> }>;
}

/**
 * (b): the real CLI, bundled from the current source. With BENCH_UPDATE=download or a BENCH_TRANSPORT,
 * downloadFile() alone — what the CLI spends its time in — run the same way: a plain-node child process (the module transpiled to JS into `dir`) that fetches the
 * manifest, downloads into `dir` (fsynced before it resolves) and checks the hash. Not in-process: under
 * tsx the bench process starts at ~75 MB RSS (tsx's loader thread) and has done the other work already,
 * so its maxRSS would measure tsx, not the transport.
 */
async function runUpdate(manifestUrl: string, dir: string): Promise<Measured> {
  await settleDisk();
  if (useCli()) {
    const measured = await measureChild(CLI, ['update', '--manifest', manifestUrl, '--dir', dir, '--allow-unsigned', '--json']);
    return { ...measured, what: 'CLI `model-updater update`' };
  }
  const runner = await buildFallbackRunner(path.join(dir, '.bench-runner'));
  const transport = transportName();
  const measured = await measureChild(runner, [manifestUrl, dir, transport]);
  const why = process.env.BENCH_TRANSPORT !== undefined ? `BENCH_TRANSPORT=${transport}` : 'BENCH_UPDATE=download';
  return { ...measured, what: `downloadFile() in a node child (${why})` };
}

/** Runs `node script ...args`, timing it from spawn to exit and tracking its peak RSS (VmHWM). */
async function measureChild(script: string, args: string[]): Promise<Omit<Measured, 'what'>> {
  const started = performance.now();
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let peakKb = 0;
  // VmHWM is the kernel's own peak-RSS counter, so polling only has to read it before the process exits.
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8').then(
      (status) => (peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0))),
      () => undefined,
    );
  }, 20);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  const elapsed = seconds(performance.now() - started);
  if (code !== 0) throw new Error(`node ${script} exited with ${code}: ${output.slice(-2000)}`);
  // The fallback runner reports its own VmHWM at exit too, which cannot miss the last 20 ms.
  const reported = /"maxRssKb":(\d+)/.exec(output)?.[1];
  if (process.env.BENCH_DEBUG) console.error(`child: ${output.trim()} | polled VmHWM ${peakKb} kB`);
  if (reported !== undefined) peakKb = Math.max(peakKb, Number(reported));
  return { seconds: elapsed, peakRssMB: peakKb / 1024 };
}

/**
 * Transpiles src/core/download/downloadFile.ts, the Node transport and file staging area, and the modules
 * they import to plain JS in `outDir`, plus a runner script standing in for `update`. Returns the
 * runner's path.
 */
async function buildFallbackRunner(outDir: string): Promise<string> {
  const ts = (await import('typescript')).default;
  const pending = ['core/download/downloadFile.ts', 'node/nodeTransport.ts', 'node/fileStagingArea.ts'].map((file) => path.join(REPO, 'src', file));
  const done = new Set<string>();
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (done.has(file)) continue;
    done.add(file);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    const out = path.join(outDir, path.relative(REPO, file)).replace(/\.ts$/, '.js');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, outputText);
    for (const [, specifier] of source.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) pending.push(path.resolve(path.dirname(file), `${specifier}.ts`));
  }
  await writeFile(path.join(outDir, 'package.json'), '{"type":"module"}');
  // The transpiled modules import packages (proxy-from-env, ...): resolve them from the repository's.
  await symlink(path.join(REPO, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  const runner = path.join(outDir, 'update.js');
  await writeFile(
    runner,
    `import { readFileSync } from 'node:fs';
import http from 'node:http';
import { downloadFile } from './src/core/download/downloadFile.js';
import { FileStagingArea } from './src/node/fileStagingArea.js';
import { createNodeTransport } from './src/node/nodeTransport.js';
const [manifestUrl, dir, transport] = process.argv.slice(2);
// node:http, not fetch: the first fetch() alone lifts peak RSS by ~27 MB (undici warming up) and would
// hide what downloadFile itself costs.
const manifest = await new Promise((resolve, reject) =>
  http.get(manifestUrl, (res) => {
    let text = '';
    res.setEncoding('utf8').on('data', (chunk) => (text += chunk)).on('end', () => resolve(JSON.parse(text)));
  }).on('error', reject),
);
const file = manifest.versions[0].files[0];
const result = await downloadFile({
  url: new URL(file.url, manifestUrl).href,
  file: { version: manifest.versions[0].version, path: file.path },
  expectedSize: file.size,
  transport: createNodeTransport({ direct: transport !== 'node-http' }),
  staging: new FileStagingArea(dir),
});
if (result.sha256 !== file.sha256) throw new Error('downloadFile hashed ' + result.sha256 + ', the manifest says ' + file.sha256);
// VmHWM, not resourceUsage().maxRSS: on Linux ru_maxrss keeps the forking parent's pre-exec peak.
const hwm = /VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
console.log(JSON.stringify({ maxRssKb: Number(hwm) }));
`,
  );
  return runner;
}

/** (a): curl writes the file, then a streamed SHA-256 reads it back. */
async function runBaseline(url: string, out: string, expectedSha256: string): Promise<number> {
  await settleDisk();
  const started = performance.now();
  await run('curl', ['-s', '-o', out, url]);
  const sha256 = await hashFile(out);
  const elapsed = seconds(performance.now() - started);
  if (sha256 !== expectedSha256) throw new Error(`curl's copy hashes to ${sha256}, expected ${expectedSha256}`);
  // Deleting it drops its dirty pages, so the kernel does not write them back during the next run.
  await rm(out);
  return elapsed;
}

/** Writes back every dirty page first, so neither side pays for the other's writeback. */
async function settleDisk(): Promise<void> {
  await run('sync', []);
}

/**
 * A streamed SHA-256 through one reused 1 MiB buffer. Not createReadStream: its fresh buffer per read
 * leaves ~1 GiB of garbage in this process, and V8 freeing it later ran during (b) and slowed it.
 */
async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(MIB);
  const handle = await open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/**
 * Writes `bytes` of incompressible-looking data from a small pool of random blocks (fast, little memory)
 * and returns its SHA-256. The file is fsynced so its writeback does not disturb the timed runs.
 */
async function generate(file: string, bytes: number): Promise<string> {
  const block = 256 * 1024;
  const { randomBytes } = await import('node:crypto');
  const pool = Array.from({ length: 16 }, () => randomBytes(block));
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    for (let offset = 0, i = 0; offset < bytes; offset += block, i++) {
      const chunk = (pool[(i * 7) % pool.length] as Buffer).subarray(0, Math.min(block, bytes - offset));
      hash.update(chunk);
      await handle.write(chunk);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

async function startServerProcess(root: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve', root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code} before listening`)));
  });
  lines.close();
  return { child, url };
}

async function serveUntilStdinCloses(root: string): Promise<void> {
  const server = await startTestServer({ root });
  process.stdout.write(`${server.url}\n`);
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await server.close();
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function seconds(ms: number): number {
  return ms / 1000;
}

function round(value: number, digits = 3): number {
  return Number(value.toFixed(digits));
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * MIB ? `${(bytes / 1024 / MIB).toFixed(2)} GiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}

function formatRate(bytes: number, secs: number): string {
  return `(${(bytes / MIB / secs).toFixed(0)} MiB/s)`;
}
