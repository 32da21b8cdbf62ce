/**
 * The chunk-index document: the signed list of the chunk indexes of a service's files, published beside
 * the manifest (`manifest.json` → `manifest.chunks.json`) rather than in it. A client of 0.2.0 parses
 * the manifest strictly and would refuse a field it does not know, so the manifest keeps the 0.2.0 shape
 * and clients that know chunk indexes read them from here.
 *
 * Entries are keyed by the SHA-256 and size of the file they index: an entry can only ever describe the
 * bytes the signed manifest names, so a stale or mixed-up document costs a whole-file download, never a
 * wrong install (the whole file is verified against the manifest anyway). Unlike the manifest, fields
 * this client does not know are ignored, so later versions can add to the document without stopping
 * this one.
 */
import { z } from 'zod';
import type { ChunkIndexRef, Manifest } from '../../../machines/types.js';
import { maxChunkIndexBytes } from '../chunks/chunkIndex.js';
import { UpdateError } from '../errors.js';

/** The signed payload's `type`: a manifest signature can never pass for this document, nor the reverse. */
export const CHUNK_INDEX_DOCUMENT_TYPE = 'model-updater/chunk-indexes';
export const CHUNK_INDEX_DOCUMENT_VERSION = 1;

/** The chunk index of the file with this content. */
export interface ChunkIndexEntry {
  /** The file's SHA-256 and size, as the manifest gives them. */
  sha256: string;
  size: number;
  chunkIndex: ChunkIndexRef;
}

export interface ChunkIndexDocument {
  type: typeof CHUNK_INDEX_DOCUMENT_TYPE;
  schemaVersion: typeof CHUNK_INDEX_DOCUMENT_VERSION;
  modelId: string;
  files: ChunkIndexEntry[];
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

const entrySchema = z
  .object({
    sha256: sha256Hex,
    size: z.number().int().nonnegative(),
    chunkIndex: z.object({ url: z.string().min(1), size: z.number().int().positive(), sha256: sha256Hex }),
  })
  .refine((entry) => entry.chunkIndex.size <= maxChunkIndexBytes(entry.size), 'the index is larger than an index of a file of this size can be');

const documentSchema = z
  .object({
    type: z.literal(CHUNK_INDEX_DOCUMENT_TYPE),
    schemaVersion: z.literal(CHUNK_INDEX_DOCUMENT_VERSION),
    modelId: z.string().min(1),
    files: z.array(entrySchema),
  })
  .superRefine((document, ctx) => {
    const seen = new Set<string>();
    for (const [i, entry] of document.files.entries()) {
      if (seen.has(entry.sha256)) ctx.addIssue({ code: 'custom', path: ['files', i, 'sha256'], message: 'lists a file twice' });
      seen.add(entry.sha256);
    }
  });

/**
 * Where a manifest's chunk-index document is: beside it, named after it.
 * @example
 * chunkIndexDocumentUrl('https://cdn.example/m/manifest.json') // 'https://cdn.example/m/manifest.chunks.json'
 */
export function chunkIndexDocumentUrl(manifestUrl: string): string {
  const url = new URL(manifestUrl);
  const name = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  const stem = name.endsWith('.json') ? name.slice(0, -'.json'.length) : name;
  // The stem is taken as it is in the path (already percent-encoded); './' keeps a colon in it a path.
  return new URL(`./${stem || 'manifest'}.chunks.json`, url).href;
}

/** The file name of the document `publish` writes beside `manifest.json`. */
export const CHUNK_INDEX_DOCUMENT_FILE = 'manifest.chunks.json';

/** Validates the (already verified or unsigned) payload; MANIFEST_INVALID names the field. */
export function parseChunkIndexDocument(value: unknown, source: string): ChunkIndexDocument {
  const parsed = documentSchema.safeParse(value);
  if (parsed.success) return parsed.data as ChunkIndexDocument;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(root)';
  throw new UpdateError('MANIFEST_INVALID', `${source} is invalid at "${field}": ${issue.message}. Publish the version again (\`model-updater publish\`) to rewrite it.`);
}

/** Whether a file of the manifest has no chunk index yet (the manifest of 0.3.0 named them itself). */
export function lacksChunkIndexes(manifest: Manifest): boolean {
  return manifest.versions.some((entry) => entry.files.some((file) => file.chunkIndex === undefined));
}

/**
 * The manifest with each file's chunk index from the document, where the manifest names none itself.
 * @example
 * const manifest = withChunkIndexes(accepted.manifest, document.files)
 */
export function withChunkIndexes(manifest: Manifest, entries: readonly ChunkIndexEntry[]): Manifest {
  const byContent = new Map(entries.map((entry) => [entry.sha256, entry]));
  return {
    ...manifest,
    versions: manifest.versions.map((entry) => ({
      ...entry,
      files: entry.files.map((file) => {
        const found = byContent.get(file.sha256);
        return file.chunkIndex || !found || found.size !== file.size ? file : { ...file, chunkIndex: found.chunkIndex };
      }),
    })),
  };
}
