/**
 * A small Node service that keeps its ONNX model current in the background with model-updater: it
 * loads each version with onnxruntime (wasm), health-checks it on a golden input before switching, and
 * serves predictions from whichever version is active. A version with wrong weights fails the golden
 * input and is rolled back; the service never stops answering.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
// In an app: `from 'model-updater'`. Here the repository's source, so the example tracks it.
import { createModelUpdater, type ModelUpdater, type ModelUpdaterOptions } from '../../src/index.js';
import { GOLDEN_INPUT, GOLDEN_OUTPUT } from './onnxModel.js';

ort.env.wasm.numThreads = 1; // no worker threads: a small model, and a service that exits cleanly

export interface ModelServiceOptions {
  manifestUrl: string;
  dir: string;
  /** Background check interval. Default 10 minutes. */
  checkEveryMs?: number;
  /** Passed through to the updater (retry, trust, inspect, ...). */
  updater?: Partial<ModelUpdaterOptions<ort.InferenceSession>>;
}

export interface ModelService {
  readonly updater: ModelUpdater<ort.InferenceSession>;
  /** Starts the updater (restoring and loading the active model) and the background checks. */
  start(): Promise<void>;
  /** y = x·W + B with the active model. */
  predict(x: number[]): Promise<number[]>;
  /** The golden input through the active model. */
  health(): Promise<{ ok: boolean; version: string | null; output: number[] | null }>;
  stop(): Promise<void>;
}

async function run(session: ort.InferenceSession, x: number[]): Promise<number[]> {
  const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, x.length]) });
  return Array.from(y!.data as Float32Array);
}

const matchesGolden = (output: number[]) => output.length === GOLDEN_OUTPUT.length && output.every((v, i) => Math.abs(v - GOLDEN_OUTPUT[i]!) < 1e-5);

/**
 * @example
 * const service = createModelService({ manifestUrl: 'https://models.example.com/linear/manifest.json', dir: '/var/lib/svc/models' })
 * await service.start(); console.log(await service.predict([1, 2, 3]))
 */
export function createModelService(options: ModelServiceOptions): ModelService {
  let timer: ReturnType<typeof setInterval> | undefined;
  let checking: Promise<unknown> | undefined;
  const updater = createModelUpdater<ort.InferenceSession>({
    manifestUrl: options.manifestUrl,
    dir: options.dir,
    ...options.updater,
    loader: {
      load: async (model) => ort.InferenceSession.create(await readFile(join(model.path, 'model.onnx'))),
      healthCheck: async (_model, session) => matchesGolden(await run(session, GOLDEN_INPUT)),
      unload: (_model, session) => session.release(),
    },
  });
  const active = () => {
    const session = updater.model;
    if (!session) throw new Error('No model is installed yet; the first update is still running.');
    return session;
  };
  return {
    updater,
    async start() {
      await updater.start();
      timer = setInterval(() => {
        checking ??= updater.check('scheduled').catch(() => undefined).finally(() => (checking = undefined));
      }, options.checkEveryMs ?? 10 * 60_000);
      timer.unref();
    },
    predict: async (x) => run(active(), x),
    async health() {
      const session = updater.model;
      if (!session) return { ok: false, version: null, output: null };
      const output = await run(session, GOLDEN_INPUT);
      return { ok: matchesGolden(output), version: updater.active?.version ?? null, output };
    },
    async stop() {
      clearInterval(timer);
      await checking;
      updater.stop();
    },
  };
}
