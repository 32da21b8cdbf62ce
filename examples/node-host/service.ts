/**
 * A voice-activity service, the kind a live-transcription panel runs beside its recogniser: it answers
 * "is this 32 ms of audio speech?" with a Silero VAD model and keeps that model current in the
 * background with model-updater. The model family changes under it: the legacy model takes its state as
 * `h` and `c`, v5 and v6 as one `state`. The hooks handle that:
 * - `migrate` converts what the host keeps for the old version (the live stream's state, saved per
 *   version) into the new version's layout, written beside the old one;
 * - `load` opens the model and adapts to its input signature;
 * - `healthCheck` plays the golden tone and compares with the answers in the version's signed metadata,
 *   so a damaged copy that loads fine is still refused and rolled back.
 */
import { join } from 'node:path';
// In an app: `from 'model-updater'`. Here the repository's source, so the example tracks it.
import { createModelUpdater, type ModelRef, type ModelUpdater, type ModelUpdaterOptions } from '../../src/index.js';
import { checkGolden, vadMetadata } from './golden.js';
import { convertState, readStream, writeStream, type SavedStream } from './streamState.js';
import { FRAME_SAMPLES, openVadModel, silentState, type VadModel } from './vadModel.js';

export interface VadServiceOptions {
  manifestUrl: string;
  /** The updater's folder: model versions and its event log. */
  dir: string;
  /** The host's own data: the stream state of each version. */
  dataDir: string;
  /** Between background checks. Default 10 minutes. */
  checkEveryMs?: number;
  /** Passed through to the updater (trust, policy, retry, ...). */
  updater?: Partial<ModelUpdaterOptions<VadModel>>;
}

export interface SpeechAnswer {
  version: string;
  /** One per frame of FRAME_SAMPLES samples. */
  probabilities: number[];
  /** Frames the stream has heard, across versions. */
  frames: number;
}

export interface VadService {
  readonly updater: ModelUpdater<VadModel>;
  /** Starts the updater: restores its log, loads the active model, checks now and every `checkEveryMs`. */
  start(): Promise<void>;
  /** Runs the active model over 16 kHz samples (whole frames of 512) and carries the stream's state on. */
  speech(samples: Float32Array): Promise<SpeechAnswer>;
  /** The active version, its inputs, and whether it still answers the golden tone as published. */
  health(): Promise<{ ok: boolean; version: string | null; inputs: readonly string[]; problem?: string }>;
  stop(): Promise<void>;
}

/** The version's model file: the one `.onnx` it was published with. */
function modelFile(model: ModelRef): string {
  const onnx = model.files.filter((file) => file.path.endsWith('.onnx'));
  if (onnx.length !== 1) throw new Error(`version ${model.version} has ${onnx.length} .onnx files; this service expects one`);
  return join(model.path, onnx[0]!.path);
}

/**
 * @example
 * const vad = createVadService({ manifestUrl: 'https://models.example.com/vad/manifest.json', dir: '/var/lib/vad/models', dataDir: '/var/lib/vad/data', updater: { trustedKeys: [pub] } })
 * await vad.start(); (await vad.speech(samples)).probabilities
 */
export function createVadService(options: VadServiceOptions): VadService {
  const { dataDir } = options;
  const updater = createModelUpdater<VadModel>({
    manifestUrl: options.manifestUrl,
    dir: options.dir,
    ...options.updater,
    policy: { schedule: { intervalMs: options.checkEveryMs ?? 10 * 60_000, startupSpreadMs: 0 }, ...options.updater?.policy },
    loader: {
      // Runs before the new version loads, and may run twice after a crash: it only reads the old
      // version's file and writes the new version's, so running it again gives the same result.
      async migrate({ from, to }) {
        const saved = from ? await readStream(dataDir, from.version) : null;
        if (saved) await writeStream(dataDir, to.version, { state: convertState(saved.state, vadMetadata(to.metadata).layout), frames: saved.frames });
      },
      async load(model) {
        const vad = await openVadModel(modelFile(model));
        const declared = model.metadata?.layout;
        if (declared !== undefined && declared !== vad.layout) {
          await vad.release();
          throw new Error(`its metadata says layout ${String(declared)}, the model's inputs are ${vad.inputNames.join(', ')}`);
        }
        return vad;
      },
      healthCheck: async (model, vad) => checkGolden(vad, vadMetadata(model.metadata)),
      unload: (_model, vad) => vad.release(),
    },
  });

  // One request at a time: each frame's state feeds the next, and the file is saved after each request.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };
  let current: { version: string; stream: SavedStream } | null = null;

  return {
    updater,
    start: () => updater.start(),
    speech: (samples) =>
      serially(async () => {
        const vad = updater.model;
        const version = updater.active?.version;
        if (!vad || !version) throw new Error('No model is installed yet: the first update is still running.');
        if (samples.length === 0 || samples.length % FRAME_SAMPLES !== 0) throw new Error(`send whole frames of ${FRAME_SAMPLES} samples (float32), got ${samples.length} samples`);
        // A new version continues from the stream its migrate prepared.
        if (current?.version !== version) current = { version, stream: (await readStream(dataDir, version)) ?? { state: silentState(vad.layout), frames: 0 } };
        const { stream } = current;
        const probabilities: number[] = [];
        for (let at = 0; at < samples.length; at += FRAME_SAMPLES) {
          const step = await vad.step(samples.subarray(at, at + FRAME_SAMPLES), stream.state);
          probabilities.push(step.probability);
          stream.state = step.state;
          stream.frames += 1;
        }
        await writeStream(dataDir, version, stream);
        return { version, probabilities, frames: stream.frames };
      }),
    health: () =>
      serially(async () => {
        const vad = updater.model;
        const active = updater.active;
        if (!vad || !active) return { ok: false, version: null, inputs: [], problem: 'no model is installed yet' };
        try {
          await checkGolden(vad, vadMetadata(active.metadata));
          return { ok: true, version: active.version, inputs: vad.inputNames };
        } catch (error) {
          return { ok: false, version: active.version, inputs: vad.inputNames, problem: (error as Error).message };
        }
      }),
    async stop() {
      await queue;
      updater.stop();
    },
  };
}
