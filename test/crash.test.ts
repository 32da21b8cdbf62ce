/**
 * SIGKILL at every kill point of an update, a rollback, a restore and gc (each journaled record and each
 * file-system call of the store, see helpers/crashVictim.ts), and of the log's rotation and retention, once each; `npm run crash-test` runs every
 * point at least 20 times. Every kill must recover to a loadable, verifying active version.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCrashWorld, planKills, pointName, runKills, seededRandom, type CrashRun, type CrashWorld } from './helpers/crashHarness.js';

const SEED = Number(process.env.CRASH_SEED ?? 20261125);

let world: CrashWorld;
beforeAll(async () => {
  world = await createCrashWorld();
}, 60_000);
afterAll(async () => {
  await world?.close();
});

it(`recovers from a SIGKILL at every kill point, each once (seed ${SEED})`, async () => {
  // The points must cover the delicate middle, not only the edges of an update.
  const names = world.points.map(pointName);
  for (const step of ['after version.staged', 'after migration.completed', 'after model.loaded', 'after health.passed', 'after version.activated', 'after rollback.completed']) {
    expect(names).toContain(`update: ${step}`);
  }
  for (const call of [
    'write in staging.writeRecord (after preflight.passed)', // a download's resume record
    'open in staging.open (after preflight.passed)', // its staged bytes
    'rm in staging.removeRecord (after preflight.passed)', // the file is complete
    'rename in promote (after version.verified)',
    'link in promote (after version.verified)',
    'fsync in promote (after version.verified)',
    'rename in writePointer (after health.passed)', // the switch
    'rm in collectGarbage (after health.passed)', // gc after the switch
    'unlink in collectGarbage (after health.passed)',
    'rename in writePointer (after rollback.requested)', // a rollback's restore
  ]) {
    expect(names).toContain(`update: ${call}`);
  }
  // A rotation (next segment written and synced, the live one archived, the next one moved in) and a
  // retention pass (audit record, unlink) are killed inside too.
  for (const call of [
    'fsync in log.rotate (after version.activated)',
    'open in log.rotate (after version.activated)',
    'rename in log.rotate (after version.activated)',
    'after log.retention',
    'unlink in log.applyRetention (after log.retention)',
  ]) {
    expect(names).toContain(`rotate: ${call}`);
  }
  expect(names).toContain('unhealthy: after health.failed');
  expect(names).toContain('unhealthy: unlink in collectGarbage (after health.failed)'); // a failed update's restore

  // Two at a time: each victim is its own process, and most of a run is waiting for it or for fsync.
  const runs: CrashRun[] = await runKills(world, planKills(world.points, 1, seededRandom(SEED)), 2);
  const failed = runs.filter((r) => r.problems.length > 0).map((r) => `${pointName(r)} #${r.occurrence}: ${r.problems.join('; ')}`);
  expect(failed, `replay with CRASH_SEED=${SEED}`).toEqual([]);
  // Every point is reached by its kill (the counts of an uninterrupted run hold).
  expect(runs.filter((r) => !r.killed).map((r) => `${pointName(r)} #${r.occurrence}`)).toEqual([]);
}, 300_000);
