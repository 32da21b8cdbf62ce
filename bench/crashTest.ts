/**
 * `npm run crash-test -- --runs 500 [--seed N]`: the kill test at scale. Prints where the kills landed
 * (the victim's last journaled record) and every run whose invariants failed, with the seed to replay it.
 */
import { parseArgs } from 'node:util';
import { crashOnce, createCrashWorld, seededRandom } from '../test/helpers/crashHarness.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '500' }, seed: { type: 'string' } } });
const runs = Number(values.runs);
const seed = Number(values.seed ?? Date.now() % 2 ** 31);
const world = await createCrashWorld();
const random = seededRandom(seed);
const landed = new Map<string, number>();
const failures = [];
const started = performance.now();
try {
  for (let run = 0; run < runs; run++) {
    const result = await crashOnce(world, run, random);
    landed.set(result.lastRecord, (landed.get(result.lastRecord) ?? 0) + 1);
    if (result.problems.length) {
      failures.push(result);
      console.log(`run ${run} FAILED (kill after ${result.killAfterMs} ms, last record ${result.lastRecord}): ${result.problems.join('; ')}`);
    }
    if ((run + 1) % 50 === 0) console.log(`${run + 1}/${runs} runs, ${failures.length} failed`);
  }
} finally {
  await world.close();
}
console.log(`\nseed ${seed}; an uninterrupted update takes ${world.updateMs.toFixed(0)} ms; kills landed after:`);
for (const [record, count] of [...landed].sort((a, b) => b[1] - a[1])) console.log(`  ${String(count).padStart(4)}  ${record}`);
console.log(`${runs - failures.length} passed, ${failures.length} failed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exitCode = failures.length ? 1 : 0;
