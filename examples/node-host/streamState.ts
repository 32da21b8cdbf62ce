/**
 * What the host keeps for its model: the live stream's recurrent state and how many frames it has heard,
 * saved per model version (`<dataDir>/<version>/stream.json`) so a restarted service carries on where it
 * stopped. Each version has its own file: `migrate` writes the new version's beside the old one, never
 * over it, so a rollback finds the old version's state as it left it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentState, type StateLayout, type StreamState } from './vadModel.js';

export interface SavedStream {
  state: StreamState;
  /** Frames heard since the stream began, across versions. */
  frames: number;
}

type StreamFile = { layout: 'h,c'; h: number[]; c: number[]; frames: number } | { layout: 'state'; state: number[]; frames: number };

const fileOf = (dataDir: string, version: string) => join(dataDir, version, 'stream.json');

/**
 * The stream saved for a version, or null when it has none yet.
 * @example
 * const saved = await readStream('/var/lib/vad/data', '1.0.0') // { state: { layout: 'h,c', h, c }, frames: 310 }
 */
export async function readStream(dataDir: string, version: string): Promise<SavedStream | null> {
  let text: string;
  try {
    text = await readFile(fileOf(dataDir, version), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const saved = JSON.parse(text) as StreamFile;
  if (saved.layout === 'h,c' && saved.h?.length === 128 && saved.c?.length === 128) {
    return { state: { layout: 'h,c', h: Float32Array.from(saved.h), c: Float32Array.from(saved.c) }, frames: saved.frames };
  }
  if (saved.layout === 'state' && saved.state?.length === 256) return { state: { layout: 'state', state: Float32Array.from(saved.state) }, frames: saved.frames };
  throw new Error(`${fileOf(dataDir, version)} holds no stream state this host can read`);
}

/**
 * Saves a version's stream: written to a temporary file and renamed over, so a crash leaves the old or the new one.
 * @example
 * await writeStream(dataDir, '2.0.0', { state, frames: 311 })
 */
export async function writeStream(dataDir: string, version: string, saved: SavedStream): Promise<void> {
  const file = fileOf(dataDir, version);
  const { state, frames } = saved;
  const body: StreamFile =
    state.layout === 'h,c' ? { layout: 'h,c', h: Array.from(state.h), c: Array.from(state.c), frames } : { layout: 'state', state: Array.from(state.state), frames };
  await mkdir(join(dataDir, version), { recursive: true });
  await writeFile(`${file}.tmp`, JSON.stringify(body));
  await rename(`${file}.tmp`, file);
}

/**
 * The same stream in another model's layout. Legacy keeps two LSTM layers of 64 (h and c, [2, 1, 64]);
 * v5 and v6 keep one `state` [2, 1, 128] whose first row is h and second c. The two layers side by side
 * become the one row of 128: the stream's memory carries over, and the new model settles from it within
 * a few frames instead of starting deaf.
 * @example
 * convertState(legacyState, 'state') // { layout: 'state', state: Float32Array(256) }
 */
export function convertState(state: StreamState, to: StateLayout): StreamState {
  if (state.layout === to) return structuredClone(state);
  if (state.layout === 'h,c') {
    const converted = new Float32Array(256);
    converted.set(state.h, 0); // h: layer 0 then layer 1, 64 each
    converted.set(state.c, 128);
    return { layout: 'state', state: converted };
  }
  const back = silentState('h,c') as Extract<StreamState, { layout: 'h,c' }>;
  back.h.set(state.state.subarray(0, 128));
  back.c.set(state.state.subarray(128, 256));
  return back;
}
