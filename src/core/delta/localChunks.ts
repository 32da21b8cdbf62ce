/**
 * The chunk indexes of the files a device holds (the active and retained versions' stored content),
 * cut with the sizes of the new file's index: read from the model folder's cache, or computed from the
 * stored bytes when first needed (a version installed before indexes existed) and cached there.
 */
import { ContentChunker, type ChunkerParams } from '../chunks/contentChunker.js';
import { decodeChunkIndex, encodeChunkIndex, type Chunk, type ChunkIndex } from '../chunks/chunkIndex.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { Sha256 } from '../ports/stagingArea.js';

/** Stored content: a file of a held version, by its SHA-256. */
export interface HeldContent {
  sha256: string;
  size: number;
}

/** The cache name of the index of `sha256` cut with `params`. */
export function chunkIndexName(sha256: string, params: ChunkerParams): string {
  return `${sha256}.${params.minSize}-${params.avgSize}-${params.maxSize}`;
}

const PIECE_BYTES = 4 * 1024 * 1024;

/**
 * Cuts stored content into chunks and hashes each, reading it piece by piece (bounded memory).
 * Null when the content is not stored (or shorter than `size`).
 */
export async function indexStoredContent(
  read: (position: number, length: number) => Promise<Uint8Array | null>,
  size: number,
  params: ChunkerParams,
  createHash: () => Promise<Sha256>,
  signal?: AbortSignal,
): Promise<ChunkIndex | null> {
  const chunker = new ContentChunker(params);
  const chunks: Chunk[] = [];
  let hash = await createHash();
  let start = 0;
  for (let position = 0; position < size; ) {
    signal?.throwIfAborted();
    const piece = await read(position, Math.min(PIECE_BYTES, size - position));
    if (piece === null || piece.length === 0) return null;
    const ends: number[] = [];
    chunker.push(piece, (end) => ends.push(end));
    let from = 0;
    for (const end of ends) {
      hash.update(piece.subarray(from, end));
      chunks.push({ offset: start, length: position + end - start, sha256: hash.digest() });
      start = position + end;
      hash = await createHash();
      from = end;
    }
    if (from < piece.length) hash.update(piece.subarray(from));
    position += piece.length;
  }
  const last = chunker.finish();
  if (last > 0) chunks.push({ offset: start, length: last, sha256: hash.digest() });
  return { format: 1, params: { ...params }, size, chunks };
}

/**
 * The indexes of the held content, in the order given (the active version's files first), skipping
 * content the store no longer has.
 * @example
 * const held = await heldChunkIndexes(store, [{ sha256, size }], index.params, () => staging.createHash())
 */
export async function heldChunkIndexes(
  store: ModelStore,
  held: readonly HeldContent[],
  params: ChunkerParams,
  createHash: () => Promise<Sha256>,
  signal?: AbortSignal,
): Promise<Array<{ content: string; index: ChunkIndex }>> {
  if (!store.readContent) return [];
  const read = store.readContent.bind(store);
  const indexes: Array<{ content: string; index: ChunkIndex }> = [];
  const seen = new Set<string>();
  for (const content of held) {
    if (seen.has(content.sha256)) continue;
    seen.add(content.sha256);
    const name = chunkIndexName(content.sha256, params);
    let index = await cached(store, name, content.size);
    if (index === null) {
      index = await indexStoredContent((position, length) => read(content.sha256, position, length), content.size, params, createHash, signal);
      if (index === null) continue;
      // A cache that cannot be written costs a recomputation next time, nothing more.
      await store.writeChunkIndex?.(name, encodeChunkIndex(index)).catch(() => undefined);
    }
    indexes.push({ content: content.sha256, index });
  }
  return indexes;
}

/** A cached index, or null when none is cached or it does not read back (it is computed again). */
async function cached(store: ModelStore, name: string, size: number): Promise<ChunkIndex | null> {
  const bytes = await store.readChunkIndex?.(name).catch(() => null);
  if (!bytes) return null;
  try {
    return decodeChunkIndex(bytes, size);
  } catch {
    return null;
  }
}
