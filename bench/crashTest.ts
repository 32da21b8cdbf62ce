/**
 * `npm run crash-test -- [--per-point 20] [--seed N] [--parallel N]`: the kill test at scale. Lists the kill points
 * (each journaled record and each file-system call of the store, counted in one uninterrupted run of
 * each scenario), kills the victim at every point `--per-point` times (spread over the point's
 * occurrences), and prints the distribution: kills per point and how many recovered.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { createCrashWorld, planKills, pointName, runKills, seededRandom, type CrashRun } from '../test/helpers/crashHarness.js';

const { values } = parseArgs({ options: { 'per-point': { type: 'string', default: '20' }, seed: { type: 'string' }, parallel: { type: 'string', default: String(availableParallelism()) } } });
const perPoint = Number(values['per-point']);
const seed = Number(values.seed ?? Date.now() % 2 ** 31);
const started = performance.now();
const world = await createCrashWorld();
console.log(`${world.points.length} kill points (occurrences in one uninterrupted run):`);
for (const point of world.points) console.log(`  ${String(point.occurrences).padStart(3)}  ${pointName(point)}`);

const kills = planKills(world.points, perPoint, seededRandom(seed));
const byPoint = new Map<string, CrashRun[]>();
for (const point of world.points) byPoint.set(pointName(point), []);
let failures = 0;
let done = 0;
try {
  await runKills(world, kills, Number(values.parallel), (result) => {
    byPoint.get(pointName(result))!.push(result);
    if (result.problems.length) {
      failures++;
      console.log(`run ${result.run} FAILED (${pointName(result)} #${result.occurrence}, last record ${result.lastRecord}): ${result.problems.join('; ')}`);
    }
    if (++done % 100 === 0) console.log(`${done}/${kills.length} runs, ${failures} failed`);
  });
} finally {
  await world.close();
}
console.log(`\nseed ${seed}; kills per point (killed / runs, recovered OK):`);
for (const [name, runs] of byPoint) {
  const killed = runs.filter((r) => r.killed).length;
  const ok = runs.filter((r) => r.problems.length === 0).length;
  console.log(`  ${String(killed).padStart(3)} / ${String(runs.length).padEnd(3)} ${String(ok).padStart(3)} OK  ${name}`);
}
console.log(`${kills.length - failures} passed, ${failures} failed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exitCode = failures ? 1 : 0;
