/**
 * The golden input and its expected answer. The publisher measures a model's speech probabilities on a
 * fixed tone (measureGolden.ts) and publishes them in the version's signed metadata; the host's health
 * check plays the same tone through the model it just loaded and refuses it when the answers differ.
 * A model whose weights were altered after they were measured (a damaged copy, the wrong file) answers
 * differently, however well it loads.
 */
import { FRAME_SAMPLES, SAMPLE_RATE, silentState, type StateLayout, type VadModel } from './vadModel.js';

/** A pure tone, cut into frames: `frames` × FRAME_SAMPLES samples at SAMPLE_RATE. */
export interface GoldenTone {
  hz: number;
  amplitude: number;
  frames: number;
}

/** What a version's metadata carries (`publish --metadata`), signed with the rest of the manifest. */
export interface VadMetadata {
  model: 'silero-vad';
  /** The state layout its inputs take: `migrate` prepares the host's stream in it before the model loads. */
  layout: StateLayout;
  golden: {
    tone: GoldenTone;
    /** The speech probability of each frame, from a silent state, as the publisher measured it. */
    speechProbabilities: number[];
    /** The largest difference a healthy copy may show (rounding across machines). */
    tolerance: number;
  };
}

/** A 1 kHz tone at amplitude 0.1, four frames: not speech, and the pristine Silero models agree it is not. */
export const GOLDEN_TONE: GoldenTone = { hz: 1000, amplitude: 0.1, frames: 4 };
const TOLERANCE = 0.05;

function toneFrames({ hz, amplitude, frames }: GoldenTone): Float32Array[] {
  return Array.from({ length: frames }, (_, frame) =>
    Float32Array.from({ length: FRAME_SAMPLES }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * (frame * FRAME_SAMPLES + i)) / SAMPLE_RATE)),
  );
}

async function playTone(model: VadModel, tone: GoldenTone): Promise<number[]> {
  let state = silentState(model.layout);
  const probabilities: number[] = [];
  for (const frame of toneFrames(tone)) {
    const step = await model.step(frame, state);
    probabilities.push(step.probability);
    state = step.state;
  }
  return probabilities;
}

/**
 * The metadata to publish with a model: its layout and its answers on the golden tone.
 * @example
 * await writeFile('v6.metadata.json', JSON.stringify(await measureGolden(await openVadModel('silero_vad_v6.onnx'))))
 */
export async function measureGolden(model: VadModel, tone: GoldenTone = GOLDEN_TONE): Promise<VadMetadata> {
  const measured = await playTone(model, tone);
  return { model: 'silero-vad', layout: model.layout, golden: { tone, speechProbabilities: measured.map((p) => Number(p.toFixed(5))), tolerance: TOLERANCE } };
}

/** Reads a version's metadata as the golden check needs it, or says what is missing. */
export function vadMetadata(metadata: Record<string, unknown> | undefined): VadMetadata {
  const golden = (metadata as Partial<VadMetadata> | undefined)?.golden;
  const tone = golden?.tone;
  const valid =
    (metadata?.layout === 'h,c' || metadata?.layout === 'state') &&
    tone !== undefined &&
    [tone.hz, tone.amplitude, golden?.tolerance].every((n) => typeof n === 'number' && Number.isFinite(n)) &&
    Number.isInteger(tone.frames) &&
    tone.frames >= 1 &&
    tone.frames <= 64 &&
    Array.isArray(golden?.speechProbabilities) &&
    golden.speechProbabilities.length === tone.frames &&
    golden.speechProbabilities.every((p) => typeof p === 'number');
  if (!valid) throw new Error('its metadata has no golden answer (publish it with --metadata, the output of measureGolden.ts)');
  return metadata as unknown as VadMetadata;
}

/**
 * The health check: plays the golden tone and compares each frame's speech probability with the
 * publisher's. Throws a message that says which frame differs, by how much.
 * @example
 * await checkGolden(model, vadMetadata(ref.metadata))
 */
export async function checkGolden(model: VadModel, metadata: VadMetadata): Promise<void> {
  const { tone, speechProbabilities, tolerance } = metadata.golden;
  const heard = await playTone(model, tone);
  const frame = heard.findIndex((p, i) => !(Math.abs(p - speechProbabilities[i]!) <= tolerance));
  if (frame === -1) return;
  throw new Error(
    `on the golden ${tone.hz} Hz tone, frame ${frame + 1} has speech probability ${heard[frame]!.toFixed(4)} where its publisher measured ` +
      `${speechProbabilities[frame]} (tolerance ${tolerance}): these are not the weights that were measured`,
  );
}
