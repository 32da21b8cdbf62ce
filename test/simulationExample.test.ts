/**
 * The example in examples/simulate-buggy-migrate, run as a user would: simulate catches the buggy migrate
 * hook (with its seed, path, commands and log), and passes the fixed one.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'examples/simulate-buggy-migrate/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

describe('examples/simulate-buggy-migrate', () => {
  it('simulate catches a migrate hook that converts host data in place', () => {
    const result = run('--seed', '3', '--runs', '150');
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('simulate found a bug in the buggy hooks');
    expect(result.stdout).toMatch(/no usable model: its load did not succeed/);
    expect(result.stdout).toMatch(/seed 3, path \d+(:\d+)*/);
    expect(result.stdout).toMatch(/commands:\n(.|\n)*publish\((.|\n)*crashAndRestart/);
    expect(result.stdout).toMatch(/log of the failing run:\n\s+0 /);
    expect(result.stdout).toMatch(/cannot read it/);
  }, 60_000);

  it('the fixed hooks (converted data written beside the old) pass the same schedules', () => {
    const result = run('--fixed', '--seed', '3', '--runs', '60');
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('fixed hooks: 60 failure schedules, every invariant held');
    expect(result.status).toBe(0);
  }, 60_000);
});
