/**
 * The chunk index of one file: where its content-defined chunks start and end, and the SHA-256 of
 * each, in a compact versioned binary form. `publish` writes one per file; the signed manifest names
 * it with its size and SHA-256; a client compares it with the chunks it holds to fetch only the rest.
 *
 * Format 1 (big-endian):
 *
 *   offset  size  field
 *   0       4     magic "MUCX"
 *   4       1     format (1)
 *   5       3     zero
 *   8       4     minSize   \
 *   12      4     avgSize    } the chunker's sizes (ContentChunker)
 *   16      4     maxSize   /
 *   20      8     file size in bytes
 *   28      4     chunk count
 *   32      36 x count: chunk length (4) then its SHA-256 (32)
 *
 * Offsets are not stored: each chunk starts where the one before ends, so an index cannot describe
 * chunks that overlap, leave a gap or pass the end of the file. Decoding checks everything else a
 * hostile index could get wrong (sizes, counts, lengths, the exact byte length) and fails with
 * MANIFEST_INVALID before anything is planned from it.
 */
import { UpdateError } from '../errors.js';
import { chunkerParamsProblem, ContentChunker, type ChunkerParams } from './contentChunker.js';

export const CHUNK_INDEX_FORMAT = 1;
const MAGIC = [0x4d, 0x55, 0x43, 0x58]; // "MUCX"
const HEADER_BYTES = 32;
const ENTRY_BYTES = 36;
/** The smallest minSize an index may declare: it bounds the chunk count, so the size of an index. */
export const MIN_CHUNK_FLOOR = 4096;

export interface Chunk {
  offset: number;
  length: number;
  /** Lowercase hex SHA-256 of the chunk's bytes. */
  sha256: string;
}

export interface ChunkIndex {
  format: 1;
  params: ChunkerParams;
  /** Bytes of the whole file (the sum of the chunk lengths). */
  size: number;
  chunks: Chunk[];
}

/** The most bytes an index of a file of `size` bytes can take (one chunk per MIN_CHUNK_FLOOR bytes). */
export function maxChunkIndexBytes(size: number): number {
  return HEADER_BYTES + ENTRY_BYTES * (Math.ceil(size / MIN_CHUNK_FLOOR) + 1);
}

/**
 * @example
 * const bytes = encodeChunkIndex(index); // what publish writes next to the version
 */
export function encodeChunkIndex(index: ChunkIndex): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES + ENTRY_BYTES * index.chunks.length);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = CHUNK_INDEX_FORMAT;
  view.setUint32(8, index.params.minSize);
  view.setUint32(12, index.params.avgSize);
  view.setUint32(16, index.params.maxSize);
  view.setBigUint64(20, BigInt(index.size));
  view.setUint32(28, index.chunks.length);
  let at = HEADER_BYTES;
  for (const chunk of index.chunks) {
    view.setUint32(at, chunk.length);
    bytes.set(hexToBytes(chunk.sha256), at + 4);
    at += ENTRY_BYTES;
  }
  return bytes;
}

/**
 * Reads and checks an index. `expectedSize`: the file size the manifest gives; an index of another size
 * is refused. Every problem is UpdateError('MANIFEST_INVALID') naming `source` and what is wrong.
 * @example
 * const index = decodeChunkIndex(bytes, file.size, `the chunk index of ${file.path}`)
 */
export function decodeChunkIndex(bytes: Uint8Array, expectedSize: number, source = 'the chunk index'): ChunkIndex {
  const bad = (what: string) =>
    new UpdateError('MANIFEST_INVALID', `${source} is invalid: ${what}. Publish the version again (\`model-updater publish\` writes a valid index); the active model is unchanged.`);
  if (bytes.length < HEADER_BYTES) throw bad(`it has ${bytes.length} bytes, fewer than its ${HEADER_BYTES}-byte header`);
  if (!MAGIC.every((byte, i) => bytes[i] === byte)) throw bad('it does not start with "MUCX" (not a chunk index)');
  if (bytes[4] !== CHUNK_INDEX_FORMAT) throw bad(`its format is ${bytes[4]}, this client reads format ${CHUNK_INDEX_FORMAT} (a newer publisher wrote it)`);
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw bad('its reserved header bytes are not zero');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const params: ChunkerParams = { minSize: view.getUint32(8), avgSize: view.getUint32(12), maxSize: view.getUint32(16) };
  const problem = chunkerParamsProblem(params);
  if (problem) throw bad(`its chunk sizes ${JSON.stringify(params)} are unusable (${problem})`);
  if (params.minSize < MIN_CHUNK_FLOOR) throw bad(`its minSize ${params.minSize} is below ${MIN_CHUNK_FLOOR}`);
  const size64 = view.getBigUint64(20);
  if (size64 !== BigInt(expectedSize)) throw bad(`it describes a file of ${size64} bytes, the manifest says ${expectedSize}`);
  const size = expectedSize;
  const count = view.getUint32(28);
  // Every chunk but the last is longer than minSize (or exactly maxSize), so a file has at most this many.
  const shortest = Math.min(params.minSize + 1, params.maxSize);
  const most = size === 0 ? 0 : Math.floor((size - 1) / shortest) + 1;
  if (count > most) throw bad(`it lists ${count} chunks; a file of ${size} bytes cut at least every ${shortest} bytes has at most ${most}`);
  if (size > 0 && count === 0) throw bad('it lists no chunks for a file that is not empty');
  if (bytes.length !== HEADER_BYTES + ENTRY_BYTES * count) throw bad(`it has ${bytes.length} bytes; ${count} chunks take ${HEADER_BYTES + ENTRY_BYTES * count}`);
  const chunks: Chunk[] = new Array(count);
  let offset = 0;
  for (let i = 0, at = HEADER_BYTES; i < count; i++, at += ENTRY_BYTES) {
    const length = view.getUint32(at);
    const last = i === count - 1;
    if (length === 0 || length > params.maxSize || (!last && length < shortest)) {
      throw bad(`chunk ${i} has ${length} bytes, outside ${shortest}..${params.maxSize}`);
    }
    if (offset + length > size) throw bad(`chunk ${i} (at ${offset}, ${length} bytes) passes the end of the ${size}-byte file`);
    chunks[i] = { offset, length, sha256: bytesToHex(bytes.subarray(at + 4, at + ENTRY_BYTES)) };
    offset += length;
  }
  if (offset !== size) throw bad(`its chunks cover ${offset} bytes of the ${size}-byte file`);
  return { format: 1, params, size, chunks };
}

/** A SHA-256 the indexer can feed: node:crypto, hash-wasm or @noble/hashes behind one shape. */
export interface ChunkHasher {
  update(bytes: Uint8Array): void;
  /** Lowercase hex. */
  digest(): string;
}

/**
 * Builds the index of a byte stream pushed in pieces: cuts with the chunker and hashes each chunk as
 * its bytes pass. Memory stays bounded whatever the file's size (the index itself grows by 36 bytes
 * a chunk).
 *
 * @example
 * const indexer = new ChunkIndexer(DEFAULT_CHUNKER_PARAMS, () => nodeSha256());
 * for await (const piece of stream) indexer.push(piece);
 * const index = indexer.finish();
 */
export class ChunkIndexer {
  readonly #chunker: ContentChunker;
  readonly #createHash: () => ChunkHasher;
  readonly #chunks: Chunk[] = [];
  #hash: ChunkHasher;
  /** Offset of the chunk in progress. */
  #start = 0;
  #size = 0;

  constructor(params: ChunkerParams, createHash: () => ChunkHasher) {
    this.#chunker = new ContentChunker(params);
    this.#createHash = createHash;
    this.#hash = createHash();
  }

  push(bytes: Uint8Array): void {
    let from = 0;
    this.#chunker.push(bytes, (end) => {
      this.#hash.update(bytes.subarray(from, end));
      const offset = this.#start;
      const length = this.#size + end - offset;
      this.#chunks.push({ offset, length, sha256: this.#hash.digest() });
      this.#hash = this.#createHash();
      this.#start = offset + length;
      from = end;
    });
    if (from < bytes.length) this.#hash.update(bytes.subarray(from));
    this.#size += bytes.length;
  }

  finish(): ChunkIndex {
    const last = this.#chunker.finish();
    if (last > 0) this.#chunks.push({ offset: this.#start, length: last, sha256: this.#hash.digest() });
    return { format: 1, params: { ...this.#chunker.params }, size: this.#size, chunks: this.#chunks };
  }
}

function hexToBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError(`"${hex}" is not a lowercase hex SHA-256`);
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
function bytesToHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += HEX[byte];
  return hex;
}
