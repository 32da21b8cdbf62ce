/**
 * The Node host example, for real: tiny ONNX models built in code and run with onnxruntime (wasm), a
 * service that updates in the background, a health check on a golden input, and a version with wrong
 * weights rolled back while the service keeps answering. The example's own dependencies are installed
 * here when missing (they are not the library's).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelUpdater, ModelUpdaterOptions } from '../src/index.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const EXAMPLE = 'examples/node-host';
let root: string;
let server: TestServer;
/** The example's surface, typed here: its sources are not in the root typecheck (their packages may not be installed yet). */
interface ModelService {
  readonly updater: ModelUpdater<unknown>;
  start(): Promise<void>;
  predict(x: number[]): Promise<number[]>;
  health(): Promise<{ ok: boolean; version: string | null; output: number[] | null }>;
  stop(): Promise<void>;
}
let example: {
  createModelService(options: { manifestUrl: string; dir: string; checkEveryMs?: number; updater?: Partial<ModelUpdaterOptions<unknown>> }): ModelService;
  publishOnnx(site: string, version: string, weights: { W: number[]; B: number[] }): Promise<void>;
};

beforeAll(async () => {
  if (!existsSync(join(EXAMPLE, 'node_modules', 'onnxruntime-web')) || !existsSync(join(EXAMPLE, 'node_modules', 'onnx-proto'))) {
    await promisify(execFile)('npm', ['install', '--prefix', EXAMPLE, '--no-audit', '--no-fund'], { timeout: 240_000 });
  }
  // Imported after the install: they need the example's own packages.
  const load = (path: string) => import(/* @vite-ignore */ path);
  const [service, publishing] = await Promise.all([load('../examples/node-host/service.js'), load('../examples/node-host/publishModels.js')]);
  example = { createModelService: service.createModelService, publishOnnx: publishing.publishOnnx };
  root = await mkdtemp(join(tmpdir(), 'model-updater-node-host-'));
  server = await startTestServer({ root: join(root, 'site') });
}, 300_000);

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Resolves on the next updater event of that name. */
const next = <T>(on: (listener: (payload: T) => void) => () => void) =>
  new Promise<T>((resolve) => {
    const off = on((payload) => {
      off();
      resolve(payload);
    });
  });

describe('node-host example (ONNX)', () => {
  it('keeps the model current in the background and rolls back a version with wrong weights', async () => {
    const site = join(root, 'site');
    // Every good version answers the golden input x = [1, 0, 0] with [1.5, 1.5].
    await example.publishOnnx(site, '1.0.0', { W: [1, 0.5, 2, 3, 4, 5], B: [0.5, 1] });
    const service = example.createModelService({
      manifestUrl: `${server.url}manifest.json`,
      dir: join(root, 'models'),
      checkEveryMs: 20,
      updater: { allowUnsigned: true, policy: { checkOnStart: true } },
    });
    const { updater } = service;
    try {
      const first = next<{ version: string }>((l) => updater.on('activated', l));
      await service.start();
      expect(await first).toMatchObject({ version: '1.0.0' });
      expect(await service.health()).toEqual({ ok: true, version: '1.0.0', output: [1.5, 1.5] });
      expect(await service.predict([0, 1, 1])).toEqual([6.5, 9]);

      // A better model: the background check finds and activates it.
      const second = next<{ version: string }>((l) => updater.on('activated', l));
      await example.publishOnnx(site, '1.1.0', { W: [1, 0.5, -1, 1, 0.5, 2], B: [0.5, 1] });
      expect(await second).toMatchObject({ version: '1.1.0' });
      expect(await service.predict([0, 1, 1])).toEqual([0, 4]);

      // Wrong weights: loaded, fails the golden input, rolled back; 1.1.0 keeps answering.
      const rolledBack = next<{ version: string | null; cause: { code: string } | null }>((l) => updater.on('rolled-back', l));
      await example.publishOnnx(site, '1.2.0', { W: [7, 7, 7, 7, 7, 7], B: [0, 0] });
      expect(await rolledBack).toMatchObject({ version: '1.1.0', cause: { code: 'HEALTH_CHECK_FAILED' } });
      expect(updater.active?.version).toBe('1.1.0');
      expect(await service.health()).toEqual({ ok: true, version: '1.1.0', output: [1.5, 1.5] });
      expect(await service.predict([0, 1, 1])).toEqual([0, 4]);
    } finally {
      await service.stop();
    }
  });
});
