/**
 * Reads a folder `publish` wrote the way a client that knows chunk indexes sees it: manifest.json with
 * the chunk indexes manifest.chunks.json lists (signed or not; signatures are test/chunkIndexDocument's).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../../machines/types.js';
import { CHUNK_INDEX_DOCUMENT_FILE, parseChunkIndexDocument, withChunkIndexes, type ChunkIndexEntry } from '../../src/core/manifest/chunkIndexDocument.js';

const payload = (document: { signed?: unknown }) => ('signed' in document ? document.signed : document);

/** The entries of the site's manifest.chunks.json ([] when there is none). */
export async function readChunkIndexEntries(site: string): Promise<ChunkIndexEntry[]> {
  const text = await readFile(path.join(site, CHUNK_INDEX_DOCUMENT_FILE), 'utf8').catch(() => null);
  return text === null ? [] : parseChunkIndexDocument(payload(JSON.parse(text)), CHUNK_INDEX_DOCUMENT_FILE).files;
}

/** manifest.json with each file's chunk index filled in from manifest.chunks.json. */
export async function readPublishedManifest(site: string): Promise<Manifest> {
  const manifest = payload(JSON.parse(await readFile(path.join(site, 'manifest.json'), 'utf8'))) as Manifest;
  return withChunkIndexes(manifest, await readChunkIndexEntries(site));
}
