/**
 * The example in examples/simulate-buggy-migrate, run as a user would: simulate() with its defaults
 * catches the buggy migrate hook on every fresh seed (not a lucky one), with its seed, path, commands and
 * log, and passes the fixed one.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simulate } from '../src/testing/index.js';
import { buggyHooks } from '../examples/simulate-buggy-migrate/hooks.js';

const root = join(import.meta.dirname, '..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'examples/simulate-buggy-migrate/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('examples/simulate-buggy-migrate', () => {
  it('simulate() with its defaults finds the in-place migrate on each of three fresh random seeds', async () => {
    for (let i = 0; i < 3; i++) {
      const report = await simulate({ hooks: buggyHooks });
      expect(report.ok, `seed ${report.seed} missed the bug in ${report.runs} schedules`).toBe(false);
      expect(report.counterexample!.error).toMatch(/no usable model: its load did not succeed/);
    }
  }, 120_000);

  it('its command line reports the bug with seed, path, commands and log', () => {
    const result = run();
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('simulate found a bug in the buggy hooks');
    expect(result.stdout).toMatch(/no usable model: its load did not succeed/);
    expect(result.stdout).toMatch(/seed -?\d+, path \d+(:\d+)*/);
    expect(result.stdout).toMatch(/commands:\n(.|\n)*update\(/);
    expect(result.stdout).toMatch(/log of the failing run:\n\s+0 /);
    expect(result.stdout).toMatch(/cannot read it/);
  }, 120_000);

  it('the fixed hooks (converted data written beside the old) pass', () => {
    const result = run('--fixed', '--runs', '20');
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('fixed hooks: 20 failure schedules, every invariant held');
    expect(result.status).toBe(0);
  }, 120_000);
});
