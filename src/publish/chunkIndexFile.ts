/**
 * The chunk index of a file on disk (publish, and the Node store for versions installed before
 * indexes): one streaming pass that hashes the whole file and cuts and hashes its chunks.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { ChunkIndexer, type ChunkIndex } from '../core/chunks/chunkIndex.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../core/chunks/contentChunker.js';

/** node:crypto behind the indexer's hash shape. */
export function nodeChunkHasher() {
  const hash = createHash('sha256');
  return { update: (bytes: Uint8Array) => void hash.update(bytes), digest: () => hash.digest('hex') };
}

/**
 * @example
 * const { sha256, index } = await indexFileOnDisk('site/1.1.0/model.onnx')
 */
export async function indexFileOnDisk(path: string, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS): Promise<{ sha256: string; index: ChunkIndex }> {
  const whole = createHash('sha256');
  const indexer = new ChunkIndexer(params, nodeChunkHasher);
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const piece = buffer.subarray(0, bytesRead);
      whole.update(piece);
      indexer.push(piece);
    }
  } finally {
    await handle.close();
  }
  return { sha256: whole.digest('hex'), index: indexer.finish() };
}
