/**
 * How reliably simulate() finds a real bug with its defaults: `npm run bench:simulate [-- --seeds 20]`.
 * For fresh random seeds it runs simulate() with nothing but the hooks of examples/simulate-buggy-migrate,
 * and prints per seed whether it found the bug and how long it took (search and shrinking), then the
 * detection rate and the median time to the counterexample. The last line is one JSON object.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { simulate } from '../src/testing/index.js';
import { buggyHooks } from '../examples/simulate-buggy-migrate/hooks.js';
import { threeStepHooks } from '../test/helpers/threeStepHooks.js';

// --hooks three-step: a host bug three steps deep (test/helpers/threeStepHooks.ts) instead of the example.
const { values } = parseArgs({ options: { seeds: { type: 'string', default: '20' }, hooks: { type: 'string', default: 'buggy-migrate' } } });
const hooks = values.hooks === 'three-step' ? threeStepHooks : buggyHooks;
const seeds = Number(values.seeds);
const results: Array<{ seed: number; found: boolean; seconds: number; cpuSeconds: number; runs: number }> = [];
for (let i = 0; i < seeds; i++) {
  const seed = (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const report = await simulate({ hooks, seed });
  const seconds = (performance.now() - started) / 1000;
  // CPU time of this process too: on a machine other work loads, the wall-clock time says more about the load.
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  results.push({ seed, found: !report.ok, seconds, cpuSeconds, runs: report.runs });
  const how = report.ok ? `missed after ${report.runs} schedules` : `found after ${report.runs} schedules, ${report.counterexample!.commands.length - 1} commands: ${report.counterexample!.error.split('\n')[0]}`;
  console.log(`seed ${String(seed).padStart(11)}  ${report.ok ? 'MISSED' : 'found '}  ${seconds.toFixed(1).padStart(5)} s (cpu ${cpuSeconds.toFixed(1).padStart(4)} s)  ${how}`);
}
const found = results.filter((r) => r.found);
const times = found.map((r) => r.seconds).sort((a, b) => a - b);
const medianOf = (sorted: number[]) => (sorted.length === 0 ? null : sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2);
const median = medianOf(times);
const cpuMedian = medianOf(found.map((r) => r.cpuSeconds).sort((a, b) => a - b));
console.log(
  `detection ${found.length}/${seeds}; median ${median === null ? '-' : median.toFixed(2)} s to the counterexample (found seeds, search and shrinking; cpu ${cpuMedian === null ? '-' : cpuMedian.toFixed(2)} s); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores`,
);
console.log(JSON.stringify({ seeds, found: found.length, detectionRate: found.length / seeds, medianSecondsToFind: median === null ? null : Number(median.toFixed(2)) }));
