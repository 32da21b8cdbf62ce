/**
 * A young-generation garbage collection, run on demand by the bulk download over node:http.
 *
 * Why: node:http hands every body segment over in a freshly allocated buffer. Its JavaScript wrapper dies at
 * once, but V8 frees the memory behind it only at a collection, and it starts one for such memory only
 * after some 64 MB of it has piled up. A minor collection per MiB received (well under a millisecond
 * while little is alive) kept the peak RSS of a 1 GiB download at about 60 MB instead of about 90 MB
 * (bench/download.ts, node:http transport). It only pays off when the bytes die young: the download copies them into reused
 * slots (slotWriter.ts) instead of keeping the chunks.
 *
 * V8 hands out its `gc()` only with --expose-gc. The flag is set just long enough to take the function
 * from a fresh context and cleared again, so the host's own contexts do not get a `gc` global. Where
 * that fails (a runtime that refuses the flag), collecting is skipped: memory then peaks higher, nothing
 * else changes.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

let collect: (() => void) | undefined;

/** Runs a minor (scavenge) collection, or nothing where the runtime does not allow it. */
export function collectYoungGarbage(): void {
  collect ??= makeCollector();
  collect();
}

function makeCollector(): () => void {
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (typeof exposed === 'function') return () => exposed({ type: 'minor' });
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as GcFunction;
    return () => gc({ type: 'minor' });
  } catch {
    return () => undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
