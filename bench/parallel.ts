/**
 * Parallel ranges against a real nginx on loopback: a 256 MiB safetensors-like file (JSON header + 64
 * tensors of 4 MiB) downloaded over one stream (downloadFile) and over `connections` ranges at once
 * (downloadParallel), with nginx's `limit_rate 20m` per connection; then both again without a limit
 * (best of BENCH_RUNS each, taking turns), to show the parallel path costs nothing on a fast link.
 * Each download runs in its own child process, which reports its time and peak RSS.
 *
 *   npm run bench:parallel
 *   BENCH_CONNECTIONS=8 BENCH_RUNS=5 npm run bench:parallel
 *
 * The last line printed is one JSON object:
 * {"connections","singleSeconds","parallelSeconds","speedup","unthrottledRatio","peakRssMB"}.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { downloadFile } from '../src/core/download/downloadFile.js';
import { downloadParallel } from '../src/core/download/downloadParallel.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { startNginx } from '../test/helpers/nginx.js';
import { writeSafetensorsLike } from './safetensorsFile.js';

const HERE = fileURLToPath(import.meta.url);
const run = promisify(execFile);

interface Measured {
  seconds: number;
  peakRssMB: number;
  sha256: string;
}

if (process.argv[2] === '--child') {
  const [mode, url, size, dir, connections] = process.argv.slice(3) as [string, string, string, string, string];
  const options = { url, file: { version: '1.0.0', path: 'model.safetensors' }, expectedSize: Number(size), transport: createNodeTransport(), staging: new FileStagingArea(dir) };
  const started = performance.now();
  const result = mode === 'parallel' ? await downloadParallel({ ...options, connections: Number(connections) }) : await downloadFile(options);
  const seconds = (performance.now() - started) / 1000;
  const measured: Measured = { seconds, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), sha256: result.sha256 };
  process.stdout.write(`${JSON.stringify(measured)}\n`);
} else {
  await main();
}

async function child(mode: 'single' | 'parallel', url: string, size: number, connections: number, tmp: string): Promise<Measured> {
  const dir = await mkdtemp(path.join(tmp, `${mode}-`));
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', HERE, '--child', mode, url, String(size), dir, String(connections)], { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Measured;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 4);
  const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bench-parallel-'));
  try {
    const site = path.join(tmp, 'site');
    await mkdir(site);
    const size = await writeSafetensorsLike(path.join(site, 'model.safetensors'));
    const round = (n: number) => Math.round(n * 1000) / 1000;
    let peakRssMB = 0;

    const throttled = await startNginx({ root: site, limitRate: '20m' });
    let single: Measured;
    let parallel: Measured;
    try {
      const url = `${throttled.url}model.safetensors`;
      single = await child('single', url, size, connections, tmp);
      console.log(`throttled (limit_rate 20m per connection): one stream ${single.seconds.toFixed(2)} s, rss ${single.peakRssMB} MB`);
      parallel = await child('parallel', url, size, connections, tmp);
      console.log(`throttled: ${connections} connections ${parallel.seconds.toFixed(2)} s, rss ${parallel.peakRssMB} MB`);
      if (parallel.sha256 !== single.sha256) throw new Error('the two downloads disagree on the SHA-256');
      peakRssMB = Math.max(peakRssMB, parallel.peakRssMB);
    } finally {
      await throttled.stop();
    }

    const open = await startNginx({ root: site });
    const singles: number[] = [];
    const parallels: number[] = [];
    try {
      const url = `${open.url}model.safetensors`;
      for (let i = 0; i < runs; i++) {
        // Taking turns: neither side always inherits the other's page cache and write-back.
        const order = i % 2 === 0 ? (['single', 'parallel'] as const) : (['parallel', 'single'] as const);
        for (const mode of order) {
          const measured = await child(mode, url, size, connections, tmp);
          (mode === 'single' ? singles : parallels).push(measured.seconds);
          if (mode === 'parallel') peakRssMB = Math.max(peakRssMB, measured.peakRssMB);
          console.log(`unthrottled run ${i + 1}: ${mode} ${measured.seconds.toFixed(2)} s, rss ${measured.peakRssMB} MB`);
        }
      }
    } finally {
      await open.stop();
    }
    const best = (values: number[]) => Math.min(...values);
    console.log(
      JSON.stringify({
        connections,
        singleSeconds: round(single.seconds),
        parallelSeconds: round(parallel.seconds),
        speedup: round(single.seconds / parallel.seconds),
        unthrottledRatio: round(best(parallels) / best(singles)),
        peakRssMB,
      }),
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
