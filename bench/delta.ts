/**
 * Differential update benchmark, against a real nginx on loopback (`limit_rate` 50 MB/s per connection):
 * a 256 MiB safetensors-like model (an 8-byte header length, a JSON header, 64 tensors of 4 MiB); v2
 * changes 6 tensors and grows the header by 100 bytes, which shifts every tensor's offset. Both versions
 * are published with the publish API (chunk indexes on), v1 is installed, then v2 is installed twice from
 * v1: differentially (the default) and fully (the same v2 published without chunk indexes).
 *
 *   npx tsx bench/delta.ts
 *   BENCH_GAPS=1 npx tsx bench/delta.ts    # also: fetched bytes and ranges for chunk sizes 64 KiB / 256 KiB / 1 MiB and gaps
 *   BENCH_CONNECTIONS=4 npx tsx bench/delta.ts   # both updates over 4 connections (default 1: limit_rate is per connection)
 *
 * The machine is shared: absolute times move with the load; compare the two updates of one run.
 * The last line printed is one JSON object:
 * {"bytes","changedBytes","fetchedBytes","fetchedFraction","deltaSeconds","fullSeconds"}.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createModelUpdater } from '../src/index.js';
import { publish } from '../src/publish/index.js';
import { ChunkIndexer } from '../src/core/chunks/chunkIndex.js';
import { DEFAULT_CHUNKER_PARAMS } from '../src/core/chunks/contentChunker.js';
import { localChunkMap, planDelta } from '../src/core/delta/planDelta.js';
import { startNginx } from '../test/helpers/nginx.js';
import { nginxProgram } from '../test/helpers/systemPrograms.js';

const MIB = 1024 * 1024;
const TENSORS = 64;
const TENSOR_BYTES = Number(process.env.TENSOR_MIB ?? 4) * MIB;
const CHANGED = [3, 11, 22, 35, 47, 60];
/** Connections of both updates (BENCH_CONNECTIONS); default 1, so that the link runs at limit_rate. */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 1);

/** A safetensors file: u64 little-endian header length, the JSON header, the tensors' bytes. */
function safetensors(tensors: Buffer[], extraHeader: string): { bytes: Buffer; headerBytes: number } {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: extraHeader } };
  tensors.forEach((tensor, i) => {
    header[`layers.${i}.weight`] = { dtype: 'F32', shape: [1024, 1024], data_offsets: [i * TENSOR_BYTES, (i + 1) * TENSOR_BYTES] };
  });
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return { bytes: Buffer.concat([length, json, ...tensors]), headerBytes: 8 + json.length };
}

const sha256 = () => {
  const hash = createHash('sha256');
  return { update: (b: Uint8Array) => void hash.update(b), digest: () => hash.digest('hex') };
};

async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await run();
  return { seconds: (performance.now() - started) / 1000, value };
}

async function main(): Promise<void> {
  nginxProgram().require();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bench-delta-'));
  const nginx = await startNginx({ root: path.join(tmp, 'site'), limitRate: '50m' });
  try {
    const { bytes, changedBytes, sha256: v2Sha256 } = await prepare(tmp);

    // delta/: published with chunk indexes (the default); full/: the same versions without.
    const published: Record<string, number> = {};
    for (const [site, chunkIndex] of [['delta', true], ['full', false]] as const) {
      const started = performance.now();
      await publish({ out: path.join(tmp, 'site', site), version: '1.0.0', inputs: [path.join(tmp, 'v1', 'model.safetensors')], chunkIndex });
      published[site] = (performance.now() - started) / 1000;
    }
    console.log(`publish of 256 MiB: ${published.delta!.toFixed(2)} s with chunk index, ${published.full!.toFixed(2)} s without`);

    const updaters = Object.fromEntries(
      (['delta', 'full'] as const).map((site) => [
        site,
        createModelUpdater({
          manifestUrl: `${nginx.url}${site}/manifest.json`,
          dir: path.join(tmp, `install-${site}`),
          allowUnsigned: true,
          policy: { approval: 'auto', checkOnStart: false },
          loader: { load: (model) => model.version },
          // nginx's limit_rate holds for each connection: one connection each makes 50 MB/s the link's rate.
          download: { connections: CONNECTIONS },
        }),
      ]),
    );
    for (const updater of Object.values(updaters)) {
      await updater.start();
      const installed = await updater.check();
      if (updater.active?.version !== '1.0.0') throw new Error(`v1 did not install: ${JSON.stringify(installed)}`);
    }
    for (const [site, chunkIndex] of [['delta', true], ['full', false]] as const) {
      await publish({ out: path.join(tmp, 'site', site), version: '2.0.0', inputs: [path.join(tmp, 'v2', 'model.safetensors')], chunkIndex });
    }
    const logStart = (await readFile(nginx.accessLog, 'utf8')).length;
    let announced: number | undefined;
    updaters.delta!.on('update-available', (event) => (announced = (event as { fetchBytes?: number }).fetchBytes));
    const results: Record<string, number> = {};
    for (const site of ['full', 'delta'] as const) {
      const updater = updaters[site]!;
      // Where the time goes: seconds in each top-level state of the chart.
      const phases: Record<string, number> = {};
      let phase = { name: '', since: performance.now() };
      const watch = updater.subscribe((snapshot) => {
        const name = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0]!;
        if (name === phase.name) return;
        phases[phase.name] = (phases[phase.name] ?? 0) + (performance.now() - phase.since) / 1000;
        phase = { name, since: performance.now() };
      });
      const { seconds, value } = await timed(() => updater.check());
      watch.unsubscribe();
      console.log(`${site}: ${Object.entries(phases).filter(([name]) => name !== '').map(([name, s]) => `${name} ${s.toFixed(2)} s`).join(', ')}`);
      if (updater.active?.version !== '2.0.0') throw new Error(`${site}: v2 did not install: ${JSON.stringify(value)}`);
      const installed = createHash('sha256').update(await readFile(path.join(tmp, `install-${site}`, 'versions', '2.0.0', 'model.safetensors'))).digest('hex');
      if (installed !== v2Sha256) throw new Error(`${site}: the installed v2 differs from the published one`);
      results[site] = seconds;
      updater.stop();
    }
    const log = (await readFile(nginx.accessLog, 'utf8')).slice(logStart).trim().split('\n');
    const deltaLines = log.filter((line) => line.includes('/delta/2.0.0/model.safetensors'));
    const fetchedBytes = deltaLines.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    console.log(`delta: ${deltaLines.length} range requests, ${fetchedBytes} bytes of the file fetched (announced before download: ${announced ?? 'n/a'}), ${results.delta!.toFixed(2)} s`);
    console.log(`full:  ${results.full!.toFixed(2)} s`);
    console.log(`(${CONNECTIONS} connection(s) each; 2 shared cores, other agents running: times are this run's, compare the two updates)`);
    console.log(JSON.stringify({ bytes, changedBytes, fetchedBytes, fetchedFraction: Number((fetchedBytes / bytes).toFixed(4)), deltaSeconds: Number(results.delta!.toFixed(3)), fullSeconds: Number(results.full!.toFixed(3)) }));
  } finally {
    await nginx.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Writes v1 and v2 under `tmp` (and measures the chunker on v2). Their buffers die with this call, so
 * none of their ~1 GB is live, for the garbage collector to chase, while the updates are timed.
 */
async function prepare(tmp: string): Promise<{ bytes: number; changedBytes: number; sha256: string }> {
  const v1Tensors = Array.from({ length: TENSORS }, () => randomBytes(TENSOR_BYTES));
  const v2Tensors = v1Tensors.map((tensor, i) => (CHANGED.includes(i) ? randomBytes(TENSOR_BYTES) : tensor));
  const v1 = safetensors(v1Tensors, '');
  const v2 = safetensors(v2Tensors, 'x'.repeat(100));
  const changedBytes = v2.headerBytes + CHANGED.length * TENSOR_BYTES;
  for (const [name, file] of [['v1', v1], ['v2', v2]] as const) {
    await mkdir(path.join(tmp, name), { recursive: true });
    await writeFile(path.join(tmp, name, 'model.safetensors'), file.bytes);
  }
  console.log(`model: ${v2.bytes.length} bytes; v2 changes ${CHANGED.length} tensors and grows the header by ${v2.headerBytes - v1.headerBytes} bytes (${changedBytes} bytes changed)`);

  // Chunking speed (the chunker and SHA-256 of every chunk, as publish runs it).
  const indexing = await timed(async () => {
    const indexer = new ChunkIndexer(DEFAULT_CHUNKER_PARAMS, sha256);
    for (let at = 0; at < v2.bytes.length; at += MIB) indexer.push(v2.bytes.subarray(at, at + MIB));
    return indexer.finish();
  });
  console.log(`indexing (cut + SHA-256 per chunk): ${(v2.bytes.length / MIB / indexing.seconds).toFixed(0)} MiB/s, ${indexing.value.chunks.length} chunks`);

  if (process.env.BENCH_GAPS) sweep(v1.bytes, v2.bytes);
  return { bytes: v2.bytes.length, changedBytes, sha256: createHash('sha256').update(v2.bytes).digest('hex') };
}

/** Fetched bytes and requests for several chunk sizes and gap thresholds (plans only, no network). */
function sweep(v1: Buffer, v2: Buffer): void {
  for (const avg of [64, 256, 1024]) {
    const params = { minSize: (avg / 4) * 1024, avgSize: avg * 1024, maxSize: avg * 4 * 1024 };
    const index = (bytes: Buffer) => {
      const indexer = new ChunkIndexer(params, sha256);
      for (let at = 0; at < bytes.length; at += MIB) indexer.push(bytes.subarray(at, at + MIB));
      return indexer.finish();
    };
    const old = index(v1);
    const next = index(v2);
    for (const gap of [0, 256 * 1024, MIB, 4 * MIB]) {
      const plan = planDelta(next, localChunkMap([{ content: 'v1', index: old }]), { maxGapBytes: gap });
      console.log(`avg ${avg} KiB, gap ${gap / 1024} KiB: fetch ${plan.fetchBytes} bytes in ${plan.spans.length} ranges; index ${32 + 36 * next.chunks.length} bytes`);
    }
  }
}

await main();
