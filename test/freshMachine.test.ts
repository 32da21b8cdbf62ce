/**
 * The README's promise that `npm test` passes on a machine with Node alone: scripts/freshMachineTest.sh
 * hides Chromium, nginx, tinyproxy and python3 in a mount namespace of its own, and the suites that need
 * them run there. Without CI they skip with one line a program naming what to install, and the run
 * passes; with CI=true they are required and the run fails naming them. Hiding programs needs root.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mountCapability } from './helpers/systemPrograms.js';

const PROJECT = path.resolve(import.meta.dirname, '..');
/** Suites that need nginx (two files, to see its line printed once), python3 and tinyproxy. */
const SUITES = ['test/staticServers.test.ts', 'test/proxy.test.ts', 'test/leftoverProcesses.test.ts'];
const SKIP_LINES = [
  'skipped: nginx is missing: install it (apt-get install -y nginx-light) to run these tests; .ci/run does.',
  'skipped: python3 is missing: install it (apt-get install -y python3) to run these tests; .ci/run does.',
  'skipped: tinyproxy is missing: install it (apt-get install -y tinyproxy) to run these tests; .ci/run does.',
];

/** Runs vitest on the suites with the programs hidden; what it printed, without colours, and its exit code. */
function onFreshMachine(ci: boolean, suites: string[]): Promise<{ code: number | null; output: string }> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  delete env.CI;
  if (ci) env.CI = 'true';
  const child = spawn(path.join(PROJECT, 'scripts', 'freshMachineTest.sh'), [process.execPath, path.join(PROJECT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...suites], {
    cwd: PROJECT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output: output.replace(/\x1b\[[0-9;]*m/g, '') })));
}

const mounting = mountCapability();
describe.skipIf(mounting.skip)('on a machine without Chromium, nginx, tinyproxy and python3', () => {
  beforeAll(() => mounting.require());

  it('the suites that need them skip, each program named once with what to install, and the run passes', async () => {
    const { code, output } = await onFreshMachine(false, SUITES);
    expect(output).toMatch(/^freshMachineTest: hidden .*\/nginx/m);
    const skipLines = output.split('\n').filter((line) => line.startsWith('skipped:'));
    expect(skipLines.sort(), output).toEqual(SKIP_LINES);
    expect(output).toMatch(/Tests\s+\d+ passed \| \d+ skipped/);
    expect(output).not.toMatch(/\d+ failed/);
    expect(code, output).toBe(0);
    // The README quotes the line as it is.
    expect(await readFile(path.join(PROJECT, 'README.md'), 'utf8')).toContain(`\n\`${SKIP_LINES[0]}\`\n`);
  }, 240_000);

  it('under CI=true they are required: the run fails and says what to install', async () => {
    const { code, output } = await onFreshMachine(true, SUITES.slice(0, 2));
    for (const line of SKIP_LINES) expect(output).toContain(`Error: ${line.slice('skipped: '.length)}`);
    expect(output).not.toContain('skipped:');
    expect(output).toMatch(/Test Files\s+2 failed/);
    expect(code).toBe(1);
  }, 240_000);
});
