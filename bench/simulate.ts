/**
 * More simulation than `npm test` has time for: `npm run simulate -- --runs 2000 [--seed n] [--path p --replay-path r]`.
 * Runs the simulator against a correct host and prints the counterexample of a failure (exit 1).
 */
import { parseArgs } from 'node:util';
import { simulate } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '500' },
    seed: { type: 'string' },
    path: { type: 'string' },
    'replay-path': { type: 'string' },
    'max-commands': { type: 'string', default: '30' },
  },
});
const started = performance.now();
const report = await simulate({
  runs: Number(values.runs),
  maxCommands: Number(values['max-commands']),
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
  ...(values.path === undefined ? {} : { path: values.path }),
  ...(values['replay-path'] === undefined ? {} : { replayPath: values['replay-path'] }),
});
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (report.ok) {
  console.log(`${report.runs} schedules, seed ${report.seed}: every invariant held (${seconds} s)`);
} else {
  const c = report.counterexample!;
  console.log(`FAILED after ${report.runs} schedules (${seconds} s): ${c.error}`);
  console.log(`replay: npm run simulate -- --seed ${c.seed} --path ${c.path} --replay-path '${c.replayPath}'`);
  console.log(['commands:', ...c.commands.map((command) => `  ${command}`), `state: ${c.state}`, 'log:', ...c.log.map((line) => `  ${line}`)].join('\n'));
  process.exitCode = 1;
}
