/**
 * `npm run bench:fleet`: 1,000,000 installs (FLEET_INSTALLS to change) over a simulated week, driven by
 * the real scheduling code (src/schedule.ts), the chart's own retry delay (retryDelayMs) and the real
 * rollout buckets (machines/policy.ts). No network.
 *
 * The fleet powers on together (edge boxes after a power cut: all within 10 minutes), the worst case for
 * an update service. Printed: the check rate per minute, peak over mean, for DEFAULT_SCHEDULE (what a
 * host gets without configuring anything), for the earlier default that checked at once on start-up,
 * and for fixed 6 h intervals without jitter; the share of installs a 10 % rollout reaches; and, during a
 * 30-minute 503 storm with Retry-After, the request rate at the service compared with clients that retry
 * every 30 s. Last line: one JSON object.
 */
import { randomUUID } from 'node:crypto';
import { retryDelayMs } from '../machines/updater.machine.js';
import { isRolledOutTo } from '../machines/versionPolicy.js';
import { seededRandom } from '../machines/seededRandom.js';
import type { UpdaterContext } from '../machines/types.js';
import { DEFAULT_SCHEDULE, nextCheckDelay, startupDelay, type SchedulePolicy } from '../src/core/schedule.js';

const INSTALLS = Number(process.env.FLEET_INSTALLS ?? 1_000_000);
const WEEK_S = 7 * 24 * 3600;
const STORM = { start: 3 * 24 * 3600 + 12 * 3600, seconds: 30 * 60, retryAfterS: 600 };
const MAX_CHECK_ATTEMPTS = 5;
const NAIVE_RETRY_S = 30;

interface Run {
  schedule: SchedulePolicy;
  storm: boolean;
  /** Our clients: the chart's in-session retries (Retry-After honoured), then the scheduler's back-off. Else a naive 30 s retry. */
  backoff: boolean;
}

/** Checks per minute over the week. */
function simulate(run: Run, seed: number): Uint32Array {
  const random = seededRandom(seed);
  const perMinute = new Uint32Array(WEEK_S / 60);
  // A bucket queue by second: head[second] -> install -> next[install] -> ...
  const head = new Int32Array(WEEK_S).fill(-1);
  const next = new Int32Array(INSTALLS);
  const failures = new Uint8Array(INSTALLS);
  const attempt = new Uint8Array(INSTALLS);
  const enqueue = (install: number, at: number) => {
    const second = Math.floor(at);
    if (second >= WEEK_S) return;
    next[install] = head[second]!;
    head[second] = install;
  };
  for (let install = 0; install < INSTALLS; install++) {
    const poweredOn = random() * 600;
    enqueue(install, poweredOn + startupDelay(run.schedule, random()) / 1000);
    attempt[install] = 1;
  }
  const context = (install: number) =>
    ({
      config: { retryBaseDelayMs: 1_000, maxRetryDelayMs: 300_000 },
      error: { code: 'SERVICE_UNAVAILABLE', message: '', retryAfterMs: STORM.retryAfterS * 1000 },
      session: { attempt: attempt[install]!, jitter: random() },
    }) as unknown as UpdaterContext;

  for (let second = 0; second < WEEK_S; second++) {
    let install = head[second]!;
    head[second] = -1;
    while (install !== -1) {
      const following = next[install]!;
      perMinute[Math.floor(second / 60)]!++;
      const failing = run.storm && second >= STORM.start && second < STORM.start + STORM.seconds;
      let delayS: number;
      if (!failing) {
        failures[install] = 0;
        attempt[install] = 1;
        delayS = nextCheckDelay(run.schedule, { failures: 0 }, random()) / 1000;
      } else if (!run.backoff) {
        delayS = NAIVE_RETRY_S;
      } else if (attempt[install]! < MAX_CHECK_ATTEMPTS) {
        delayS = retryDelayMs(context(install)) / 1000; // the chart's deferred check
        attempt[install]!++;
      } else {
        attempt[install] = 1;
        failures[install] = Math.min(255, failures[install]! + 1);
        delayS = nextCheckDelay(run.schedule, { failures: failures[install]!, retryAfterMs: STORM.retryAfterS * 1000 }, random()) / 1000;
      }
      enqueue(install, second + Math.max(1, delayS));
      install = following;
    }
  }
  return perMinute;
}

function peakToMean(perMinute: Uint32Array): number {
  let peak = 0;
  let total = 0;
  for (const count of perMinute) {
    peak = Math.max(peak, count);
    total += count;
  }
  return peak / (total / perMinute.length);
}

function stormRate(perMinute: Uint32Array): number {
  const first = STORM.start / 60;
  let total = 0;
  for (let minute = first; minute < first + STORM.seconds / 60; minute++) total += perMinute[minute]!;
  return total / (STORM.seconds / 60);
}

const started = performance.now();
/** The default before the first check was spread: a check at once on start-up, then the jittered interval. */
const CHECK_AT_START: SchedulePolicy = { ...DEFAULT_SCHEDULE, startupSpreadMs: 0 };
const NO_JITTER: SchedulePolicy = { ...DEFAULT_SCHEDULE, startupSpreadMs: 0, intervalMs: 6 * 3600_000, spread: 0 };
const jittered = simulate({ schedule: DEFAULT_SCHEDULE, storm: false, backoff: true }, 1);
const atStart = simulate({ schedule: CHECK_AT_START, storm: false, backoff: true }, 4);
const fixed = simulate({ schedule: NO_JITTER, storm: false, backoff: true }, 2);
const storm = simulate({ schedule: DEFAULT_SCHEDULE, storm: true, backoff: true }, 3);
const naive = simulate({ schedule: DEFAULT_SCHEDULE, storm: true, backoff: false }, 3);

let reached = 0;
for (let i = 0; i < INSTALLS; i++) if (isRolledOutTo({ version: '2.0.0', rollout: 0.1 }, randomUUID())) reached++;

const result = {
  peakToMean: Math.round(peakToMean(jittered) * 1000) / 1000,
  peakToMeanCheckAtStart: Math.round(peakToMean(atStart) * 1000) / 1000,
  peakToMeanNoJitter: Math.round(peakToMean(fixed) * 1000) / 1000,
  rolloutShare: Math.round((reached / INSTALLS) * 10000) / 10000,
  stormRateRatio: Math.round((stormRate(storm) / stormRate(naive)) * 1000) / 1000,
};
const mean = jittered.reduce((a, b) => a + b, 0) / jittered.length;
console.log(`${INSTALLS.toLocaleString('en')} installs, one simulated week, powered on within 10 minutes (${((performance.now() - started) / 1000).toFixed(1)} s)`);
console.log(
  `check rate: mean ${mean.toFixed(0)}/min; peak/mean ${result.peakToMean} with DEFAULT_SCHEDULE (6 h 7 min ± 10 %, first check spread over one interval), ${result.peakToMeanCheckAtStart} checking at once on start-up (the earlier default), ${result.peakToMeanNoJitter} with fixed 6 h and no jitter`,
);
console.log(`a 10 % rollout reaches ${(result.rolloutShare * 100).toFixed(2)} % of installs`);
console.log(`30-minute 503 storm (Retry-After ${STORM.retryAfterS} s): ${stormRate(storm).toFixed(0)} requests/min with back-off vs ${stormRate(naive).toFixed(0)}/min retrying every ${NAIVE_RETRY_S} s (ratio ${result.stormRateRatio})`);
console.log(JSON.stringify(result));
