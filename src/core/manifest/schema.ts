/**
 * The manifest the update service publishes, parsed strictly: anything that does not validate is
 * MANIFEST_INVALID with the offending field named.
 */
import semver from 'semver';
import { z } from 'zod';
import { UpdateError } from '../errors.js';
import { isRawPublicKey } from '../trust/keyFormat.js';
import { maxChunkIndexBytes } from '../chunks/chunkIndex.js';
import type { Manifest } from '../../../machines/types.js';

export const MANIFEST_SCHEMA_VERSION = 1;

/** Why a relative path is unsafe to write under the model folder, or null when it is safe. */
export function unsafePathReason(path: string): string | null {
  if (path.length === 0) return 'is empty';
  if (path.includes('\0')) return 'contains a NUL byte';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  if (/^[a-zA-Z]:/.test(path)) return 'starts with a drive letter';
  const segments = path.split('/');
  if (segments.some((s) => s === '..')) return 'contains ".."';
  if (segments.some((s) => s === '' || s === '.')) return 'is not normalized (empty or "." segment)';
  if (path.normalize('NFC') !== path) return 'is not in Unicode NFC form';
  return null;
}

/** The name a path has on a case-insensitive, Unicode-normalizing file system. */
export function collisionKey(path: string): string {
  return path.normalize('NFKC').toLowerCase().normalize('NFKC');
}

const relativePath = z.string().superRefine((path, ctx) => {
  const reason = unsafePathReason(path);
  if (reason) ctx.addIssue({ code: 'custom', message: `path "${path}" ${reason}` });
});

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

/** A file's chunk index: bounded by the file's size (one chunk per MIN_CHUNK_FLOOR bytes at most). */
const chunkIndexSchema = z.strictObject({
  url: z.string().min(1),
  size: z.number().int().positive(),
  sha256: sha256Hex,
});

const fileSchema = z
  .strictObject({
    path: relativePath,
    size: z.number().int().nonnegative(),
    sha256: sha256Hex,
    url: z.string().min(1),
    chunkIndex: chunkIndexSchema.optional(),
  })
  .superRefine((file, ctx) => {
    if (file.chunkIndex && file.chunkIndex.size > maxChunkIndexBytes(file.size)) {
      ctx.addIssue({ code: 'custom', path: ['chunkIndex', 'size'], message: `is ${file.chunkIndex.size} bytes; an index of a ${file.size}-byte file takes at most ${maxChunkIndexBytes(file.size)}` });
    }
  });

const semverRange = z.string().refine((r) => semver.validRange(r) !== null, 'must be a valid semver range');
const requirementName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lowercase name');

/**
 * What a version needs from the host. Keys this client does not know are kept (not invalid): such a
 * version is one this client cannot judge, so selection skips it (see requirementProblem).
 */
const requirementsSchema = z
  .object({
    app: semverRange.optional(),
    runtime: z.record(requirementName, semverRange).optional(),
    minMemoryBytes: z.number().int().nonnegative().optional(),
    accelerators: z.array(requirementName).min(1, 'list at least one accelerator kind (any one of them will do)').optional(),
  })
  .catchall(z.unknown());

/** The most a version's `metadata` may take, serialized: it travels in every manifest and every log. */
export const MAX_METADATA_BYTES = 64 * 1024;

/** Publisher-defined JSON, passed through as parsed (no copy, so no key is treated specially). */
const metadataSchema = z.custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'must be a JSON object').superRefine((value, ctx) => {
  const bytes = new TextEncoder().encode(JSON.stringify(value)).length;
  if (bytes > MAX_METADATA_BYTES) ctx.addIssue({ code: 'custom', message: `is ${bytes} bytes; at most ${MAX_METADATA_BYTES} are allowed (keep large data in a file of the version)` });
});

const versionSchema = z
  .strictObject({
    version: z.string().refine((v) => semver.valid(v) === v, 'must be a valid semver version, like 1.2.0'),
    channel: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lowercase channel name'),
    requires: requirementsSchema.optional(),
    notes: z.string().optional(),
    metadata: metadataSchema.optional(),
    publishedAt: z.string().optional(),
    rollout: z.number().min(0).max(1).optional(),
    /** Withdrawn by its publisher (`publish --pull`): never offered; installs running it roll back. */
    pulled: z.literal(true).optional(),
    files: z.array(fileSchema).min(1, 'a version needs at least one file'),
  })
  .superRefine((version, ctx) => {
    // Two paths that differ only by case or Unicode form would overwrite each other on case-insensitive
    // or normalizing disks; a file whose path is another's folder cannot be written at all.
    const seen = new Set<string>();
    const keys = version.files.map((file) => collisionKey(file.path));
    for (const [i, file] of version.files.entries()) {
      const key = keys[i]!;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['files'], message: `path "${file.path}" appears twice (paths that differ only by case or Unicode form collide)` });
      seen.add(key);
    }
    for (const [i, file] of version.files.entries()) {
      if (keys.some((other) => other.startsWith(`${keys[i]}/`))) {
        ctx.addIssue({ code: 'custom', path: ['files'], message: `path "${file.path}" is a file and also a folder of another file` });
      }
    }
  });

export const manifestSchema = z
  .strictObject({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    modelId: z.string().min(1),
    /** Increases with every publish; a lower one than already accepted is a rollback attack. */
    serial: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    /** After this instant (ISO 8601) the manifest is stale: a freeze attack, or a publisher who stopped. */
    expires: z.iso.datetime({ offset: true }).optional(),
    /** The key set that signs from this manifest on (key rotation). */
    trust: z
      .strictObject({
        keys: z.array(z.string().refine(isRawPublicKey, 'must be the base64 of a 32-byte Ed25519 public key')).min(1),
        threshold: z.number().int().min(1),
        /** Chained rotations: 1, 2, ...; each rotation's comes right after the one before. */
        version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
        /** Chained rotations: the id (keySetId) of the key set this one rotates from. */
        previous: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a key set id)').optional(),
      })
      .refine((trust) => trust.threshold <= new Set(trust.keys).size, 'threshold is more than the number of distinct keys')
      .refine((trust) => (trust.version === undefined) === (trust.previous === undefined), 'version and previous come together (a chained rotation names both)')
      .optional(),
    versions: z.array(versionSchema),
  })
  .superRefine((manifest, ctx) => {
    const seen = new Set<string>();
    for (const [i, entry] of manifest.versions.entries()) {
      if (seen.has(entry.version)) {
        ctx.addIssue({ code: 'custom', path: ['versions', i, 'version'], message: `version ${entry.version} is listed twice` });
      }
      seen.add(entry.version);
    }
  });

/**
 * Validates a manifest (already JSON-parsed).
 * @example
 * const manifest = parseManifest(JSON.parse(text)) // throws UpdateError('MANIFEST_INVALID') naming the field
 */
export function parseManifest(value: unknown, source = 'the manifest'): Manifest {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return parsed.data as Manifest;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(root)';
  throw new UpdateError(
    'MANIFEST_INVALID',
    `${source} is invalid at "${field}": ${issue.message}. Fix the manifest on the update service (re-run \`model-updater publish\`); the active model is unchanged.`,
  );
}

/** Parses manifest text (JSON) with the same errors. */
export function parseManifestText(text: string, source = 'the manifest'): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UpdateError(
      'MANIFEST_INVALID',
      `${source} is not valid JSON (${(error as Error).message}). Check that the URL points at manifest.json.`,
    );
  }
  return parseManifest(value, source);
}
