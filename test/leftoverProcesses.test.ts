/**
 * The check that fails a run when a process it started outlives it (test/helpers/noLeftoverProcesses.ts):
 * it finds a process by the marker it inherited, an nginx worker whose master was SIGKILLed by the file it
 * still holds (nginx overwrites its environment with its title), and a whole vitest run that leaves a
 * child behind exits 1 naming it. Each case uses a marker or folder of its own, so the real run stays clean.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeftoverProcesses, killLeftoverProcesses, RUN_MARKER } from './helpers/leftoverProcesses.js';
import { startNginx } from './helpers/nginx.js';
import { nginxProgram } from './helpers/systemPrograms.js';

const PROJECT = path.resolve(import.meta.dirname, '..');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-leftovers-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const isAlive = (pid: number) => readFile(`/proc/${pid}/stat`, 'utf8').then((stat) => !/^\d+ \(.*\) Z /.test(stat), () => false);

describe('the run', () => {
  it('gives every process it starts its marker and its own temp folder', async () => {
    expect(process.env[RUN_MARKER]).toMatch(/^[0-9a-f-]{36}$/);
    expect(path.basename(os.tmpdir())).toMatch(/^model-updater-test-run-/);
    const child = spawn(process.execPath, ['-e', `process.stdout.write(process.env.${RUN_MARKER} + ' ' + require('os').tmpdir())`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    await new Promise((resolve) => child.once('close', resolve));
    expect(out).toBe(`${process.env[RUN_MARKER]} ${os.tmpdir()}`);
  });
});

describe('findLeftoverProcesses', () => {
  it('finds a detached child by the marker in its environment, and killLeftoverProcesses ends it', async () => {
    const marker = randomUUID();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore', env: { ...process.env, [RUN_MARKER]: marker } });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const leftovers = await findLeftoverProcesses({ marker, tempRoot: tmp });
      expect(leftovers).toEqual([{ pid: child.pid, command: `${process.execPath} -e setInterval(() => {}, 1000)`, evidence: `${RUN_MARKER}=${marker} in its environment` }]);
      await killLeftoverProcesses(leftovers);
      await exited;
      expect(await findLeftoverProcesses({ marker, tempRoot: tmp })).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  const nginx = nginxProgram();
  describe.skipIf(nginx.skip)('nginx', () => {
    beforeAll(() => nginx.require());

    it('finds the worker that outlives its SIGKILLed master by the log file it holds (its environment lost the marker)', async () => {
      await writeFile(path.join(tmp, 'index.html'), 'hello');
      const server = await startNginx({ root: tmp });
      const prefix = path.dirname(path.dirname(server.accessLog));
      // The master listens before it forks its worker: only an answer proves the worker is there to outlive it.
      expect(await (await fetch(`${server.url}index.html`)).text()).toBe('hello');
      process.kill(server.pid, 'SIGKILL');
      await server.stop(); // waits for the master; the worker lives on
      const leftovers = await findLeftoverProcesses({ marker: randomUUID(), tempRoot: prefix });
      try {
        expect(leftovers).toEqual([{ pid: expect.any(Number), command: expect.stringMatching(/^nginx: worker process/), evidence: `holds ${server.accessLog} (deleted)` }]);
        // What the marker alone would miss: nginx wrote its title over its environment.
        expect(await readFile(`/proc/${leftovers[0]!.pid}/environ`, 'latin1')).not.toContain(process.env[RUN_MARKER]!);
      } finally {
        await killLeftoverProcesses(leftovers);
      }
      expect(await isAlive(leftovers[0]!.pid)).toBe(false);
    });
  });
});

describe('a vitest run with the check', () => {
  it('exits 1 when a test leaves a child running, naming it, and the child is gone afterwards', async () => {
    const config = path.join(tmp, 'vitest.config.mjs');
    await writeFile(config, `export default ${JSON.stringify({ test: { root: PROJECT, include: ['test/helpers/leavesAChildRunning.ts'], globalSetup: ['test/helpers/noLeftoverProcesses.ts'] } })};\n`);
    const pidFile = path.join(tmp, 'leftover.pid');
    const run = spawn(process.execPath, [path.join(PROJECT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', config], {
      cwd: PROJECT,
      env: { ...process.env, LEFTOVER_PID_FILE: pidFile, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    run.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    run.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const code = await new Promise<number | null>((resolve) => run.once('close', resolve));
    const pid = Number(await readFile(pidFile, 'utf8'));
    try {
      expect(output).toContain('1 passed');
      expect(output).toContain('The test run left 1 process running (killed now)');
      expect(output).toMatch(new RegExp(`pid ${pid}: .* left-running-on-purpose \\(${RUN_MARKER}=[0-9a-f-]{36} in its environment\\)`));
      expect(code, output).toBe(1);
      expect(await isAlive(pid)).toBe(false);
    } finally {
      if (await isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 120_000);
});
