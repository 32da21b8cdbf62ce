/**
 * The plan of a differential download, as pure functions: which chunks of the new file are already on
 * the device (in a version it holds) and are copied, and which byte spans are fetched with single
 * `Range` requests. No I/O here: src/core/delta/deltaDownload.ts carries a plan out.
 */
import type { Chunk, ChunkIndex } from '../chunks/chunkIndex.js';

/** Where a chunk's bytes are on the device: in stored content (a file of a held version, by its SHA-256). */
export interface LocalChunk {
  /** SHA-256 of the whole stored file that holds the chunk. */
  content: string;
  offset: number;
  length: number;
}

/** Chunk SHA-256 → one place the device holds those bytes. */
export type LocalChunkMap = ReadonlyMap<string, LocalChunk>;

/** A chunk of the new file copied from a file the device holds. */
export interface ChunkCopy {
  /** Where it goes in the new file. */
  offset: number;
  length: number;
  sha256: string;
  from: LocalChunk;
}

/** One `Range` request, bytes [start, end): whole chunks of the new file, each verified as it arrives. */
export interface FetchSpan {
  start: number;
  /** Exclusive. */
  end: number;
  chunks: Chunk[];
}

export interface DeltaPlan {
  copies: ChunkCopy[];
  spans: FetchSpan[];
  /** Bytes the spans fetch. */
  fetchBytes: number;
  /** Bytes copied from the device. */
  copyBytes: number;
}

export interface PlanOptions {
  /**
   * Local chunks between two missing runs are fetched with them, making one request, when they total
   * at most this many bytes. Default DEFAULT_MAX_GAP_BYTES.
   */
  maxGapBytes?: number;
}

/**
 * A request costs a round trip: on a 50 ms link at 10 MB/s that is 500 KB not sent. Measured on the
 * bench model (bench/delta.ts), merging gaps up to 1 MiB changes neither the bytes nor the requests
 * much there (changed regions are far apart), so this errs toward fewer requests on real links.
 */
export const DEFAULT_MAX_GAP_BYTES = 1024 * 1024;

/**
 * The chunks of the indexed files the device holds, by SHA-256 (the first place each is found).
 * @example
 * const local = localChunkMap([{ content: file.sha256, index }]);
 */
export function localChunkMap(held: ReadonlyArray<{ content: string; index: ChunkIndex }>): Map<string, LocalChunk> {
  const map = new Map<string, LocalChunk>();
  for (const { content, index } of held) {
    for (const chunk of index.chunks) {
      if (!map.has(chunk.sha256)) map.set(chunk.sha256, { content, offset: chunk.offset, length: chunk.length });
    }
  }
  return map;
}

/**
 * Plans the new file (by its index) from the local chunks: copies for the chunks held, coalesced spans
 * for the rest. Neighbouring missing runs are merged when the local bytes between them are few
 * (`maxGapBytes`): those are then fetched, not copied. Only single ranges: no multipart request.
 *
 * @example
 * const plan = planDelta(newIndex, localChunkMap(held));
 * console.log(`${plan.fetchBytes} of ${newIndex.size} bytes to fetch in ${plan.spans.length} requests`);
 */
export function planDelta(target: ChunkIndex, local: LocalChunkMap, options: PlanOptions = {}): DeltaPlan {
  const maxGap = options.maxGapBytes ?? DEFAULT_MAX_GAP_BYTES;
  const held = target.chunks.map((chunk) => {
    const from = local.get(chunk.sha256);
    return from !== undefined && from.length === chunk.length ? from : undefined;
  });
  // Runs of missing chunks as [first, last] chunk numbers, merged across small gaps of held chunks.
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < target.chunks.length; i++) {
    if (held[i] !== undefined) continue;
    const previous = runs.at(-1);
    if (previous !== undefined) {
      const gapStart = target.chunks[previous[1]]!.offset + target.chunks[previous[1]]!.length;
      if (target.chunks[i]!.offset - gapStart <= maxGap) {
        previous[1] = i;
        continue;
      }
    }
    runs.push([i, i]);
  }
  const fetched = new Set<number>();
  const spans: FetchSpan[] = runs.map(([first, last]) => {
    const chunks = target.chunks.slice(first, last + 1);
    for (let i = first; i <= last; i++) fetched.add(i);
    return { start: chunks[0]!.offset, end: chunks.at(-1)!.offset + chunks.at(-1)!.length, chunks };
  });
  const copies: ChunkCopy[] = [];
  for (const [i, chunk] of target.chunks.entries()) {
    if (fetched.has(i)) continue;
    copies.push({ offset: chunk.offset, length: chunk.length, sha256: chunk.sha256, from: held[i]! });
  }
  const fetchBytes = spans.reduce((sum, span) => sum + span.end - span.start, 0);
  return { copies, spans, fetchBytes, copyBytes: target.size - fetchBytes };
}
