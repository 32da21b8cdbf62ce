import { afterAll, beforeAll, expect, it } from 'vitest';
import { crashOnce, createCrashWorld, seededRandom, type CrashRun, type CrashWorld } from './helpers/crashHarness.js';

const RUNS = 50;
const SEED = Number(process.env.CRASH_SEED ?? 20261125);

let world: CrashWorld;
beforeAll(async () => {
  world = await createCrashWorld();
}, 60_000);
afterAll(async () => {
  await world?.close();
});

it(`recovers from ${RUNS} SIGKILLs at random points of an update (seed ${SEED})`, async () => {
  const random = seededRandom(SEED);
  const runs: CrashRun[] = [];
  for (let run = 0; run < RUNS; run++) runs.push(await crashOnce(world, run, random));
  const failed = runs.filter((r) => r.problems.length > 0);
  expect(failed, `replay with CRASH_SEED=${SEED}`).toEqual([]);
  // The kills must land across the lifecycle, not all before or after the update.
  const phases = new Set(runs.map((r) => r.lastRecord));
  // (Timing decides how many victims finish before their kill; a quarter of real kills is plenty.)
  expect(runs.filter((r) => r.killAfterMs >= 0).length).toBeGreaterThanOrEqual(RUNS / 4);
  expect(phases.size).toBeGreaterThan(4);
}, 300_000);
