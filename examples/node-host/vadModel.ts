/**
 * A Silero voice-activity model run with onnxruntime-web (wasm, offline, no native install step), whichever
 * input signature its version has: the legacy model takes its recurrent state as `h` and `c`
 * ([2, 1, 64] each) and answers `hn`, `cn`; v5 and v6 take one `state` ([2, 1, 128]) and answer `stateN`.
 * The host keeps that state between frames (see streamState.ts), so a stream carries on across calls.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = 1; // no worker threads: a small model, and a service that exits cleanly

// All sessions share one wasm instance. Interleaved, their calls can fail ("operation does not support
// unaligned accesses", seen with legacy and v5 loading and running together), and a service does
// interleave them: the new version's health check runs while the old one answers requests. One at a time.
let running: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
  const run = running.then(work, work);
  running = run.catch(() => undefined);
  return run;
}

/** 16 kHz audio in frames of 512 samples (32 ms), what Silero v5 and v6 take; legacy takes them too. */
export const SAMPLE_RATE = 16_000;
export const FRAME_SAMPLES = 512;

/** How a model version takes its recurrent state. */
export type StateLayout = 'h,c' | 'state';

/** The recurrent state a stream carries from one frame to the next, in its model's layout. */
export type StreamState = { layout: 'h,c'; h: Float32Array; c: Float32Array } | { layout: 'state'; state: Float32Array };

export interface VadModel {
  readonly layout: StateLayout;
  /** The model's input names, as it declares them. */
  readonly inputNames: readonly string[];
  /** One frame of FRAME_SAMPLES samples: the probability that it holds speech, and the state for the next frame. */
  step(frame: Float32Array, state: StreamState): Promise<{ probability: number; state: StreamState }>;
  release(): Promise<void>;
}

/** The state of a stream that has heard nothing yet. */
export function silentState(layout: StateLayout): StreamState {
  return layout === 'h,c' ? { layout, h: new Float32Array(128), c: new Float32Array(128) } : { layout, state: new Float32Array(256) };
}

/** Which layout a model's inputs ask for, or an error naming what it has instead. */
export function layoutOf(inputNames: readonly string[]): StateLayout {
  if (inputNames.includes('state')) return 'state';
  if (inputNames.includes('h') && inputNames.includes('c')) return 'h,c';
  throw new Error(`the model's inputs are ${inputNames.join(', ')}: neither Silero legacy (h, c) nor v5 and later (state)`);
}

/**
 * Opens a Silero VAD model file and adapts to its input signature.
 * @example
 * const vad = await openVadModel('silero_vad_v5.onnx')
 * const { probability } = await vad.step(frame, silentState(vad.layout))
 */
export async function openVadModel(file: string): Promise<VadModel> {
  const bytes = await readFile(file);
  const session = await oneAtATime(() => ort.InferenceSession.create(bytes));
  let layout: StateLayout;
  try {
    layout = layoutOf(session.inputNames);
  } catch (error) {
    await session.release();
    throw error;
  }
  const sr = () => new ort.Tensor('int64', BigInt64Array.from([BigInt(SAMPLE_RATE)]), []);
  return {
    layout,
    inputNames: session.inputNames,
    async step(frame, state) {
      if (frame.length !== FRAME_SAMPLES) throw new Error(`a frame is ${FRAME_SAMPLES} samples, got ${frame.length}`);
      if (state.layout !== layout) throw new Error(`this model takes its state as ${layout}, the stream holds ${state.layout}`);
      const input = new ort.Tensor('float32', frame, [1, FRAME_SAMPLES]);
      if (state.layout === 'h,c') {
        const out = await oneAtATime(() => session.run({ input, sr: sr(), h: new ort.Tensor('float32', state.h, [2, 1, 64]), c: new ort.Tensor('float32', state.c, [2, 1, 64]) }));
        return { probability: (out.output!.data as Float32Array)[0]!, state: { layout: 'h,c', h: Float32Array.from(out.hn!.data as Float32Array), c: Float32Array.from(out.cn!.data as Float32Array) } };
      }
      const out = await oneAtATime(() => session.run({ input, sr: sr(), state: new ort.Tensor('float32', state.state, [2, 1, 128]) }));
      return { probability: (out.output!.data as Float32Array)[0]!, state: { layout: 'state', state: Float32Array.from(out.stateN!.data as Float32Array) } };
    },
    release: () => oneAtATime(() => session.release()),
  };
}
