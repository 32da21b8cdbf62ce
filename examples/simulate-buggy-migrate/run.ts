/**
 * Throws random failure schedules at a migrate hook with a bug, then at the fixed one:
 * `npx tsx examples/simulate-buggy-migrate/run.ts [--fixed] [--seed n] [--runs n]`. Exits 1 when a bug is
 * found. Without --seed every run draws a fresh one (the report names it); --runs defaults to simulate()'s.
 */
import { parseArgs } from 'node:util';
// In an app: `from 'model-updater/testing'`.
import { simulate } from '../../src/testing/index.js';
import { buggyHooks, fixedHooks } from './hooks.js';

const { values } = parseArgs({ options: { fixed: { type: 'boolean', default: false }, seed: { type: 'string' }, runs: { type: 'string' } } });
const report = await simulate({
  hooks: values.fixed ? fixedHooks : buggyHooks,
  ...(values.runs === undefined ? {} : { runs: Number(values.runs) }),
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
});
if (report.ok) {
  console.log(`${values.fixed ? 'fixed' : 'buggy'} hooks: ${report.runs} failure schedules, every invariant held`);
} else {
  const c = report.counterexample!;
  console.log(`simulate found a bug in the ${values.fixed ? 'fixed' : 'buggy'} hooks: ${c.error}`);
  console.log(`seed ${c.seed}, path ${c.path}`);
  console.log(['commands:', ...c.commands.map((command) => `  ${command}`), 'log of the failing run:', ...c.log.map((line) => `  ${line}`), `host data: ${JSON.stringify(c.hostData)}`].join('\n'));
  process.exitCode = 1;
}
