/**
 * The bandwidth cap against a real nginx on loopback (no limit_rate: the cap is the only brake): a
 * 256 MiB safetensors-like file over 4 connections under one 5 MB/s budget. Measures the rate over
 * seconds 1-5 (after the first burst), then lowers the cap to 2 MB/s as a host would when a call
 * starts, and measures how long until the new rate holds: the first moment (50 ms steps) from which
 * the rate over the next 3 s is within 10 % of it. (Pieces arrive up to 1 MiB at a time, so shorter
 * windows measure the pieces, not the rate.) Then cancels.
 *
 *   npm run bench:rate
 *
 * The last line printed is one JSON object: {"capBytesPerSecond","measuredBytesPerSecond","ratio","adjustSeconds"}.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { downloadParallel } from '../src/core/download/downloadParallel.js';
import { RateBudget } from '../src/core/download/rateBudget.js';
import { REAL_TIMERS } from '../src/core/download/transferGuard.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { startNginx } from '../test/helpers/nginx.js';
import { writeSafetensorsLike } from './safetensorsFile.js';

const CAP = 5_000_000;
const LOWER = 2_000_000;
const MEASURE_FROM = 1;
const MEASURE_TO = 5;
const HOLD = 3;

const tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bench-rate-'));
try {
  const site = path.join(tmp, 'site');
  await mkdir(site);
  const size = await writeSafetensorsLike(path.join(site, 'model.safetensors'));
  const nginx = await startNginx({ root: site });
  try {
    const budget = new RateBudget(CAP, REAL_TIMERS);
    const arrivals: Array<[number, number]> = []; // [seconds since start, bytes so far]
    let bytes = 0;
    const controller = new AbortController();
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const download = downloadParallel({
      url: `${nginx.url}model.safetensors`,
      file: { version: '1.0.0', path: 'model.safetensors' },
      expectedSize: size,
      transport: createNodeTransport(),
      staging: new FileStagingArea(path.join(tmp, 'models')),
      connections: 4,
      budget,
      signal: controller.signal,
      onBytes: (delta) => {
        bytes += delta;
        arrivals.push([seconds(), bytes]);
      },
    }).catch((error: unknown) => error);
    const at = (time: number) => {
      let last = 0;
      for (const [when, total] of arrivals) {
        if (when > time) break;
        last = total;
      }
      return last;
    };
    const wait = (until: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, (until - seconds()) * 1000)));

    await wait(MEASURE_TO);
    const measured = (at(MEASURE_TO) - at(MEASURE_FROM)) / (MEASURE_TO - MEASURE_FROM);
    console.log(`cap ${CAP} B/s over 4 connections: ${Math.round(measured)} B/s over seconds ${MEASURE_FROM}-${MEASURE_TO}`);

    const changedAt = seconds();
    budget.setRate(LOWER);
    await wait(changedAt + 2 + HOLD);
    controller.abort();
    await download;
    // The first moment (in 50 ms steps) from which the rate over the next HOLD s is within 10 % of the new cap.
    let adjustSeconds = Number.NaN;
    for (let delay = 0; delay <= 2; delay += 0.05) {
      const rate = (at(changedAt + delay + HOLD) - at(changedAt + delay)) / HOLD;
      if (Math.abs(rate - LOWER) <= LOWER * 0.1) {
        adjustSeconds = delay;
        break;
      }
    }
    if (process.env.BENCH_DEBUG) for (let t = changedAt - 1; t < changedAt + 4; t += 0.25) console.log(t.toFixed(2), Math.round((at(t + 0.25) - at(t)) * 4), arrivals.filter(([w]) => w > t && w <= t + 0.25).length);
    console.log(`lowered to ${LOWER} B/s: holds ${adjustSeconds.toFixed(2)} s after the change`);
    const round = (n: number) => Math.round(n * 1000) / 1000;
    console.log(JSON.stringify({ capBytesPerSecond: CAP, measuredBytesPerSecond: Math.round(measured), ratio: round(measured / CAP), adjustSeconds: round(adjustSeconds) }));
  } finally {
    await nginx.stop();
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
