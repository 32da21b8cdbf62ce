/**
 * The differential plan, as pure functions: held chunks are copied, the rest fetched in coalesced
 * single spans, neighbouring spans merged across small gaps of held chunks.
 */
import { describe, expect, it } from 'vitest';
import type { ChunkIndex } from '../src/core/chunks/chunkIndex.js';
import { localChunkMap, planDelta } from '../src/core/delta/planDelta.js';

const KIB = 1024;
const hex = (n: number) => n.toString(16).padStart(64, '0');

/** An index of chunks of the given lengths, named by the given numbers (their "hashes"). */
function indexOf(chunks: Array<[name: number, length: number]>): ChunkIndex {
  let offset = 0;
  const list = chunks.map(([name, length]) => {
    const chunk = { offset, length, sha256: hex(name) };
    offset += length;
    return chunk;
  });
  return { format: 1, params: { minSize: 64 * KIB, avgSize: 256 * KIB, maxSize: 1024 * KIB }, size: offset, chunks: list };
}

describe('planDelta', () => {
  const held = indexOf([[1, 100 * KIB], [2, 200 * KIB], [3, 300 * KIB], [4, 400 * KIB], [5, 500 * KIB]]);
  const local = localChunkMap([{ content: 'a'.repeat(64), index: held }]);

  it('copies the chunks held (from where they are held) and fetches the others in one span per run', () => {
    // New: 1, X, 3, 4, Y, Z, 5 (X, Y, Z new); gaps of held chunks larger than maxGap keep the spans apart.
    const target = indexOf([[1, 100 * KIB], [90, 50 * KIB], [3, 300 * KIB], [4, 400 * KIB], [91, 70 * KIB], [92, 80 * KIB], [5, 500 * KIB]]);
    const plan = planDelta(target, local, { maxGapBytes: 0 });
    expect(plan.copies.map((copy) => [copy.sha256, copy.offset, copy.from.offset])).toEqual([
      [hex(1), 0, 0],
      [hex(3), 150 * KIB, 300 * KIB],
      [hex(4), 450 * KIB, 600 * KIB],
      [hex(5), 1000 * KIB, 1000 * KIB],
    ]);
    expect(plan.spans.map((span) => [span.start, span.end, span.chunks.length])).toEqual([
      [100 * KIB, 150 * KIB, 1],
      [850 * KIB, 1000 * KIB, 2],
    ]);
    expect(plan.fetchBytes).toBe(200 * KIB);
    expect(plan.copyBytes + plan.fetchBytes).toBe(target.size);
  });

  it('merges two missing runs into one span when the held chunks between them total at most maxGapBytes (those are fetched, not copied)', () => {
    const target = indexOf([[90, 50 * KIB], [2, 200 * KIB], [91, 50 * KIB], [5, 500 * KIB]]);
    expect(planDelta(target, local, { maxGapBytes: 199 * KIB }).spans).toHaveLength(2);
    const merged = planDelta(target, local, { maxGapBytes: 200 * KIB });
    expect(merged.spans.map((span) => [span.start, span.end])).toEqual([[0, 300 * KIB]]);
    expect(merged.copies.map((copy) => copy.sha256)).toEqual([hex(5)]);
    expect(merged.fetchBytes).toBe(300 * KIB);
  });

  it('fetches everything as one span when nothing is held, and nothing when everything is', () => {
    const fresh = indexOf([[80, 100 * KIB], [81, 100 * KIB]]);
    expect(planDelta(fresh, local).spans.map((span) => [span.start, span.end])).toEqual([[0, 200 * KIB]]);
    const same = planDelta(held, local);
    expect(same.spans).toEqual([]);
    expect(same.copyBytes).toBe(held.size);
  });

  it('does not copy a held chunk of the same hash but another length (a hostile or broken index)', () => {
    const target = indexOf([[1, 99 * KIB]]);
    expect(planDelta(target, local).copies).toEqual([]);
  });
});
