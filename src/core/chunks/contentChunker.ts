/**
 * Content-defined chunking (a FastCDC-style gear hash): a cut falls where the last 32 bytes hash to a
 * pattern, so a cut depends on the content around it, not on its offset. Bytes inserted or removed
 * early in a file move the cuts near the edit only: later cuts land on the same content, shifted with
 * it, so the chunks after an edit keep their hashes and a client that holds them need not fetch them.
 *
 * Platform-neutral and streaming: bytes are pushed in pieces of any size, the state between pieces is
 * two numbers, so a file of any size is cut in bounded memory.
 */

/** Chunk sizes in bytes: no cut before `minSize` (bytes skipped unhashed), a forced cut at `maxSize`. */
export interface ChunkerParams {
  minSize: number;
  /** The target average; a power of two. */
  avgSize: number;
  maxSize: number;
}

/**
 * The sizes `publish` cuts with: 256 KiB on average (64 KiB to 1 MiB). Measured on the 256 MiB bench
 * model (bench/delta.ts): smaller chunks fetch barely fewer bytes but make the index four times larger;
 * 1 MiB chunks fetch about a chunk more around every changed region.
 */
export const DEFAULT_CHUNKER_PARAMS: ChunkerParams = { minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: 1024 * 1024 };

/**
 * 256 pseudo-random 32-bit words from a fixed seed (splitmix32). Part of the index format: other words
 * would cut other boundaries, so they never change for format 1.
 */
const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  let state = 0x6d6f6465; // "mode"
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
})();

/** A mask of the `bits` highest bits: the high bits of the gear hash depend on the most bytes (up to 32). */
function highBits(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : (~0 << (32 - bits)) | 0;
}

/** Why the sizes cannot be cut with, or null when they can. */
export function chunkerParamsProblem(params: ChunkerParams): string | null {
  const { minSize, avgSize, maxSize } = params;
  if (![minSize, avgSize, maxSize].every((n) => Number.isSafeInteger(n) && n > 0)) return 'sizes must be positive whole numbers';
  if ((avgSize & (avgSize - 1)) !== 0 || avgSize < 64 || avgSize > 2 ** 28) return 'avgSize must be a power of two from 64 to 256 MiB';
  if (!(minSize <= avgSize && avgSize <= maxSize)) return 'sizes must satisfy minSize <= avgSize <= maxSize';
  if (maxSize > 2 ** 30) return 'maxSize must be at most 1 GiB';
  return null;
}

/**
 * Finds the cuts of a byte stream pushed in pieces. Normalized chunking (FastCDC): below the average
 * size the pattern has two more bits (a cut is rarer), above it two fewer (likelier), which narrows
 * the spread of chunk sizes around the average.
 *
 * @example
 * const chunker = new ContentChunker(DEFAULT_CHUNKER_PARAMS);
 * const lengths: number[] = [];
 * chunker.push(bytes, (length) => lengths.push(length));
 * const last = chunker.finish(); // the final chunk's length (0 when the stream ended on a cut)
 */
export class ContentChunker {
  readonly params: ChunkerParams;
  readonly #maskBelow: number;
  readonly #maskAbove: number;
  #hash = 0;
  /** Bytes of the chunk in progress. */
  #length = 0;

  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    const problem = chunkerParamsProblem(params);
    if (problem) throw new RangeError(`Chunker sizes ${JSON.stringify(params)}: ${problem}.`);
    this.params = { ...params };
    const bits = Math.log2(params.avgSize);
    this.#maskBelow = highBits(bits + 2);
    this.#maskAbove = highBits(bits - 2);
  }

  /**
   * Scans `bytes`; calls `onCut(end)` for every chunk that ends inside them, `end` being the offset in
   * `bytes` just past the chunk's last byte (the chunk started in an earlier piece or at the last cut).
   */
  push(bytes: Uint8Array, onCut: (end: number) => void): void {
    const { minSize, avgSize, maxSize } = this.params;
    const maskBelow = this.#maskBelow;
    const maskAbove = this.#maskAbove;
    const n = bytes.length;
    let hash = this.#hash;
    let length = this.#length;
    let i = 0;
    while (i < n) {
      if (length < minSize) {
        // No cut can fall here: skip the bytes without hashing them.
        const skip = Math.min(minSize - length, n - i);
        i += skip;
        length += skip;
        if (length < minSize) break;
      }
      const start = i;
      const aboveEnd = Math.min(n, i + (maxSize - length));
      const belowEnd = Math.min(aboveEnd, i + Math.max(0, avgSize - length));
      let cut = false;
      while (i < belowEnd) {
        hash = ((hash << 1) + GEAR[bytes[i]!]!) | 0;
        i++;
        if ((hash & maskBelow) === 0) {
          cut = true;
          break;
        }
      }
      if (!cut) {
        while (i < aboveEnd) {
          hash = ((hash << 1) + GEAR[bytes[i]!]!) | 0;
          i++;
          if ((hash & maskAbove) === 0) {
            cut = true;
            break;
          }
        }
      }
      length += i - start;
      if (cut || length === maxSize) {
        onCut(i);
        hash = 0;
        length = 0;
      }
    }
    this.#hash = hash;
    this.#length = length;
  }

  finish(): number {
    const last = this.#length;
    this.#hash = 0;
    this.#length = 0;
    return last;
  }
}
