/**
 * `npm run bench:log-fsync`: does a slow disk under the event log slow an update down? A 1 GiB update
 * (the Node updater, real files, a real loopback HTTP server) runs with the log's fsync as the disk
 * makes it, and with every log fsync taking 20 ms more (injected into the log only, through its `sync`
 * seam), in the same run, taking turns. The log writes each record at once and fsyncs in groups off the
 * event loop; only the irreversible steps wait for it, so the target is a slowdown of at most 2 %.
 *
 *   BENCH_BYTES=268435456 npm run bench:log-fsync   # 256 MiB
 *   BENCH_RUNS=3 npm run bench:log-fsync            # best of 3 each (default 2)
 *   BENCH_FSYNC_MS=50 npm run bench:log-fsync       # another slow fsync
 *
 * Wall-clock times on a busy machine vary by more than 2 % from run to run, so it also prints the time
 * the update spent waiting for the log to be durable (every irreversible step's flush()), the one place
 * a slow log fsync can reach the update: its difference between the two disks is what the slow disk
 * costs, as a share of the update's time (`attributablePercent`).
 *
 * The last line is one JSON object: {"bytes","fsyncMs","normalSeconds","slowSeconds","slowdownPercent",
 * "flushWaitMsNormal","flushWaitMsSlow","flushesPerUpdate","attributablePercent","logFsyncs"}.
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fdatasync, fdatasyncSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import type { LogSync } from '../src/node/fileEventLog.js';
import { publish } from '../src/publish/publish.js';
import { startTestServer } from '../test/helpers/testServer.js';

const MIB = 1024 * 1024;
const bytes = Number(process.env.BENCH_BYTES ?? 1024 * MIB);
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 2));
const fsyncMs = Number(process.env.BENCH_FSYNC_MS ?? 20);

/** The disk's own fsync, counted. */
function countingSync(counter: { n: number }): LogSync {
  return {
    fdatasync: (fd, callback) => {
      counter.n++;
      fdatasync(fd, callback);
    },
    fdatasyncSync: (fd) => {
      counter.n++;
      fdatasyncSync(fd);
    },
  };
}

/** The same, `ms` slower each: the callback form waits off the event loop, the blocking form blocks. */
function slowSync(ms: number, counter: { n: number }): LogSync {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    fdatasync: (fd, callback) => {
      counter.n++;
      fdatasync(fd, (error) => setTimeout(() => callback(error), ms));
    },
    fdatasyncSync: (fd) => {
      counter.n++;
      fdatasyncSync(fd);
      Atomics.wait(pause, 0, 0, ms);
    },
  };
}

const root = await mkdtemp(join(tmpdir(), 'model-updater-bench-log-fsync-'));
const server = await startTestServer({ root: join(root, 'site') });
try {
  // Two versions of one big file: every run installs 1.0.0 in a fresh folder, then times the update to 1.1.0.
  for (const version of ['1.0.0', '1.1.0']) {
    const source = join(root, 'source', version);
    await mkdir(source, { recursive: true });
    const size = version === '1.0.0' ? 1024 * 1024 : bytes;
    const file = await open(join(source, 'model.bin'), 'w');
    for (let written = 0; written < size; written += 16 * MIB) await file.write(randomBytes(Math.min(16 * MIB, size - written)));
    await file.close();
    await publish({ out: join(root, 'site'), version, inputs: [source] });
    if (version === '1.0.0') {
      // The template folder: 1.0.0 installed.
      const installer = createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir: join(root, 'template'), policy: { checkOnStart: false }, allowUnsigned: true });
      await installer.start();
      await installer.check();
      installer.stop();
    }
  }

  /** Time the update spent waiting for the log to be durable (the write-ahead rule), and how many waits. */
  const waits = { normal: { ms: 0, n: 0 }, slow: { ms: 0, n: 0 } };
  const timeUpdate = async (label: 'normal' | 'slow', sync: LogSync, index: number): Promise<number> => {
    const dir = join(root, `run-${label}-${index}`);
    await rm(dir, { recursive: true, force: true });
    await cpDir(join(root, 'template'), dir);
    const updater = createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir, policy: { checkOnStart: false }, allowUnsigned: true, log: { sync } });
    await updater.start();
    // The last run's gigabyte still being written back would land on whichever side runs next.
    execSync('sync');
    const log = updater.log;
    const flush = log.flush!.bind(log);
    log.flush = async () => {
      const began = performance.now();
      try {
        await flush();
      } finally {
        waits[label].ms += performance.now() - began;
        waits[label].n++;
      }
    };
    const started = performance.now();
    const result = await updater.check();
    const seconds = (performance.now() - started) / 1000;
    updater.stop();
    if (result.outcome !== 'activated') throw new Error(`the update did not activate: ${JSON.stringify(result)}`);
    await rm(dir, { recursive: true, force: true });
    return seconds;
  };

  const normal: number[] = [];
  const slow: number[] = [];
  const counts = { normal: { n: 0 }, slow: { n: 0 } };
  for (let i = 0; i < runs; i++) {
    // Taking turns: neither side always inherits the other's page cache and write-back.
    const order = i % 2 === 0 ? (['normal', 'slow'] as const) : (['slow', 'normal'] as const);
    for (const side of order) {
      const before = counts[side].n;
      const seconds = await timeUpdate(side, side === 'normal' ? countingSync(counts.normal) : slowSync(fsyncMs, counts.slow), i);
      (side === 'normal' ? normal : slow).push(seconds);
      console.log(`run ${i + 1} ${side}: ${seconds.toFixed(3)} s, ${counts[side].n - before} log fsyncs`);
    }
  }
  const best = (values: number[]) => Math.min(...values);
  const slowdown = ((best(slow) - best(normal)) / best(normal)) * 100;
  const logFsyncs = Math.round(counts.slow.n / runs);
  const waited = (side: 'normal' | 'slow') => waits[side].ms / runs;
  // What the slow disk adds to an update, whatever else the machine is doing: the extra waiting for the log.
  const attributablePercent = ((waited('slow') - waited('normal')) / (best(normal) * 1000)) * 100;
  console.log(
    `waiting for the log (write-ahead), per update: ${waited('normal').toFixed(1)} ms normal, ${waited('slow').toFixed(1)} ms slow, in ${(waits.slow.n / runs).toFixed(1)} flushes; ` +
      `the slow disk's share of the best normal time: ${attributablePercent.toFixed(2)} %`,
  );
  console.log(`${(bytes / MIB).toFixed(0)} MiB update, best of ${runs}: log fsync as the disk makes it ${best(normal).toFixed(3)} s; every log fsync ${fsyncMs} ms slower ${best(slow).toFixed(3)} s; slowdown ${slowdown.toFixed(2)} % (target <= 2 %), ${logFsyncs} log fsyncs an update`);
  console.log(
    JSON.stringify({
      bytes,
      fsyncMs,
      normalSeconds: round(best(normal)),
      slowSeconds: round(best(slow)),
      slowdownPercent: Math.round(slowdown * 100) / 100,
      flushWaitMsNormal: Math.round(waited('normal') * 10) / 10,
      flushWaitMsSlow: Math.round(waited('slow') * 10) / 10,
      flushesPerUpdate: waits.slow.n / runs,
      attributablePercent: Math.round(attributablePercent * 100) / 100,
      logFsyncs,
    }),
  );
} finally {
  await server.close();
  await rm(root, { recursive: true, force: true });
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

async function cpDir(from: string, to: string): Promise<void> {
  const { cp } = await import('node:fs/promises');
  await cp(from, to, { recursive: true });
}
