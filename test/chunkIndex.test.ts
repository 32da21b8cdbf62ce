/**
 * The content-defined chunker and the chunk index format: an insertion moves no cut far after it,
 * sizes stay within bounds, the same bytes always cut the same way, and a hostile index is refused.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkIndexer, decodeChunkIndex, encodeChunkIndex, MIN_CHUNK_FLOOR, type ChunkIndex } from '../src/core/chunks/chunkIndex.js';
import { ContentChunker, DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../src/core/chunks/contentChunker.js';
import { UpdateError } from '../src/core/errors.js';

const SMALL: ChunkerParams = { minSize: 256, avgSize: 1024, maxSize: 4096 };

/** Deterministic pseudo-random bytes (xorshift32): content like a model's weights, from a seed. */
function randomContent(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed | 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** The absolute end of every chunk, the stream pushed in pieces of the given sizes. */
function cuts(bytes: Uint8Array, params: ChunkerParams, pieces: number[] = [bytes.length]): number[] {
  const chunker = new ContentChunker(params);
  const ends: number[] = [];
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const piece = bytes.subarray(at, at + Math.max(1, pieces[i++ % pieces.length]!));
    const base = at;
    chunker.push(piece, (end) => ends.push(base + end));
    at += piece.length;
  }
  if (chunker.finish() > 0) ends.push(bytes.length);
  return ends;
}

const sha256 = () => {
  const hash = createHash('sha256');
  return { update: (bytes: Uint8Array) => void hash.update(bytes), digest: () => hash.digest('hex') };
};

function indexOf(bytes: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS): ChunkIndex {
  const indexer = new ChunkIndexer(params, sha256);
  for (let at = 0; at < bytes.length; at += 100_000) indexer.push(bytes.subarray(at, at + 100_000));
  return indexer.finish();
}

describe('content-defined chunker', () => {
  it('an insertion moves no cut more than 8 chunks of the largest size after it: later cuts shift with the content', () => {
    fc.assert(
      fc.property(fc.integer(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 600 }), (seed, where, inserted) => {
        const original = randomContent(seed, 64 * 1024);
        const at = where % original.length;
        const edited = new Uint8Array(original.length + inserted.length);
        edited.set(original.subarray(0, at));
        edited.set(inserted, at);
        edited.set(original.subarray(at), at + inserted.length);
        const after = new Set(cuts(edited, SMALL).map((end) => end - inserted.length));
        const later = cuts(original, SMALL).filter((end) => end > at + 8 * SMALL.maxSize);
        expect(later.filter((end) => !after.has(end))).toEqual([]);
        // Cuts before the edit are the same too: a cut depends on the content before it only.
        const before = cuts(original, SMALL).filter((end) => end <= at);
        expect(cuts(edited, SMALL).filter((end) => end <= at)).toEqual(before);
      }),
      { numRuns: 200 },
    );
  });

  it('every chunk is longer than minSize and at most maxSize (the last one at most maxSize), covering the stream', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 40_000 }), fc.constantFrom(0, 1, 2), (seed, length, zeros) => {
        // Random content, all zeros (no cut ever matches: forced cuts at maxSize), or a repeated byte.
        const bytes = zeros === 0 ? randomContent(seed, length) : new Uint8Array(length).fill(zeros === 1 ? 0 : seed & 0xff);
        const ends = cuts(bytes, SMALL);
        const lengths = ends.map((end, i) => end - (i === 0 ? 0 : ends[i - 1]!));
        expect(lengths.reduce((a, b) => a + b, 0)).toBe(length);
        for (const [i, chunk] of lengths.entries()) {
          expect(chunk).toBeLessThanOrEqual(SMALL.maxSize);
          if (i < lengths.length - 1) expect(chunk).toBeGreaterThan(SMALL.minSize);
          else expect(chunk).toBeGreaterThan(0);
        }
      }),
    );
  });

  it('is deterministic: the same bytes cut the same way however they are split into pieces', () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 8 }), (seed, pieces) => {
        const bytes = randomContent(seed, 50_000);
        expect(cuts(bytes, SMALL, pieces)).toEqual(cuts(bytes, SMALL));
      }),
    );
  });

  it('the default sizes average near 256 KiB on random content and bound every chunk to 64 KiB..1 MiB', () => {
    const ends = cuts(randomContent(7, 32 * 1024 * 1024), DEFAULT_CHUNKER_PARAMS, [1 << 20]);
    const lengths = ends.map((end, i) => end - (i === 0 ? 0 : ends[i - 1]!));
    const mean = (32 * 1024 * 1024) / lengths.length;
    expect(mean).toBeGreaterThan(200 * 1024);
    expect(mean).toBeLessThan(360 * 1024);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(1024 * 1024);
    expect(Math.min(...lengths.slice(0, -1))).toBeGreaterThan(64 * 1024);
  });
});

describe('chunk index format', () => {
  const bytes = randomContent(3, 3 * 1024 * 1024 + 123);
  const index = indexOf(bytes);

  it('lists every chunk with its offset, length and SHA-256, and reads back as written', () => {
    expect(index.size).toBe(bytes.length);
    for (const chunk of index.chunks) {
      expect(chunk.sha256).toBe(createHash('sha256').update(bytes.subarray(chunk.offset, chunk.offset + chunk.length)).digest('hex'));
    }
    const encoded = encodeChunkIndex(index);
    expect(encoded.length).toBe(32 + 36 * index.chunks.length);
    expect(decodeChunkIndex(encoded, bytes.length)).toEqual(index);
  });

  it('indexes an empty file as no chunks', () => {
    const empty = indexOf(new Uint8Array(0));
    expect(empty.chunks).toEqual([]);
    expect(decodeChunkIndex(encodeChunkIndex(empty), 0)).toEqual(empty);
  });

  /** The encoded index with one change made to a copy. */
  function tampered(change: (bytes: Uint8Array, view: DataView) => Uint8Array | void): Uint8Array {
    const copy = encodeChunkIndex(index).slice();
    return change(copy, new DataView(copy.buffer)) ?? copy;
  }

  const hostile: Array<[string, Uint8Array, RegExp]> = [
    ['not an index', new TextEncoder().encode('<html>not found</html> and some more bytes here'), /does not start with "MUCX"/],
    ['shorter than its header', new Uint8Array(10), /fewer than its 32-byte header/],
    ['a newer format', tampered((b) => void (b[4] = 2)), /format is 2/],
    ['reserved bytes set', tampered((b) => void (b[6] = 1)), /reserved/],
    ['another file size', tampered((_, v) => v.setBigUint64(20, BigInt(bytes.length + 1))), /describes a file of/],
    ['an absurd chunk count', tampered((_, v) => v.setUint32(28, 0xffffffff)), /lists 4294967295 chunks/],
    ['one entry missing (truncated)', tampered((b) => b.subarray(0, b.length - 36)), /chunks take/],
    ['trailing bytes', tampered((b) => new Uint8Array([...b, 0])), /chunks take/],
    ['a zero-length chunk', tampered((_, v) => v.setUint32(32, 0)), /chunk 0 has 0 bytes/],
    ['a chunk longer than maxSize', tampered((_, v) => v.setUint32(32, 2 * 1024 * 1024)), /chunk 0 has 2097152 bytes/],
    ['chunks passing the end of the file', tampered((_, v) => v.setUint32(32 + 36 * (index.chunks.length - 1), 1024 * 1024)), /passes the end/],
    ['chunks short of the end', tampered((_, v) => v.setUint32(32 + 36 * (index.chunks.length - 1), 1)), /cover \d+ bytes of the/],
    ['a minSize below the floor', tampered((_, v) => v.setUint32(8, MIN_CHUNK_FLOOR - 1)), /minSize 4095 is below 4096/],
    ['an average that is no power of two', tampered((_, v) => v.setUint32(12, 300 * 1024)), /avgSize must be a power of two/],
    ['sizes out of order', tampered((_, v) => v.setUint32(16, 1024)), /minSize <= avgSize <= maxSize/],
  ];
  it.each(hostile)('refuses an index with %s (MANIFEST_INVALID, saying what is wrong)', (_, encoded, reason) => {
    let thrown: unknown;
    try {
      decodeChunkIndex(encoded, bytes.length, 'the chunk index of model.bin');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UpdateError);
    expect((thrown as UpdateError).code).toBe('MANIFEST_INVALID');
    expect((thrown as UpdateError).message).toMatch(reason);
    expect((thrown as UpdateError).message).toMatch(/^the chunk index of model.bin is invalid/);
  });
});
