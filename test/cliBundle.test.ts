/**
 * The CLI as it ships: the package's `bin` is an esbuild bundle (scripts/bundleCli.ts), not the tsc
 * output the other CLI tests run through tsx. This bundles the current source the way `npm run build`
 * does and drives the result with plain node, so a bundling mistake (a dependency that needs require(),
 * a command chunk that fails to load) fails here.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleCli } from '../scripts/bundleCli.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

let tmp: string;
let cli: string;
let server: TestServer;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-bundle-'));
  cli = await bundleCli(path.join(tmp, 'cli'));
  await mkdir(path.join(tmp, 'www'));
  server = await startTestServer({ root: path.join(tmp, 'www') });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Runs the bundle with plain node; asynchronously, since the update service runs in this process. */
function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('the bundled CLI (the package bin)', () => {
  it('is where package.json says the bin is, relative to the build output', async () => {
    const pkg = JSON.parse(await readFile(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['model-updater']).toBe('dist/cli/main.js');
    expect(path.basename(cli)).toBe('main.js');
  });

  it('publishes, updates, reports status and verifies its log, each command from its own chunk', async () => {
    const model = randomBytes(300_000);
    await writeFile(path.join(tmp, 'model.onnx'), model);
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('model-updater update --manifest');

    const published = await run('publish', '--out', path.join(tmp, 'www'), '--version', '1.0.0', '--json', path.join(tmp, 'model.onnx'));
    expect(published.code, published.stderr).toBe(0);

    const dir = path.join(tmp, 'models');
    const update = await run('update', '--manifest', `${server.url}manifest.json`, '--dir', dir, '--allow-unsigned', '--json');
    expect(update.code, update.stderr).toBe(0);
    expect(JSON.parse(update.stdout)).toMatchObject({ ok: true, outcome: 'activated', active: { version: '1.0.0' } });

    const status = JSON.parse((await run('status', '--dir', dir, '--json')).stdout) as { active: { path: string; files: Array<{ sha256: string }> } };
    expect(status.active.files[0]?.sha256).toBe(createHash('sha256').update(model).digest('hex'));
    expect((await readFile(path.join(status.active.path, 'model.onnx'))).equals(model)).toBe(true);

    const verified = await run('log', '--dir', dir, '--verify', '--json');
    expect(verified.code, verified.stderr).toBe(0);
  });

  it('answers an unknown command with its usage and exit code 2', async () => {
    const result = await run('frobnicate');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });
});
