/**
 * FROZEN: the manifest schema of model-updater 0.2.0 (src/core/manifest/schema.ts at aee79da), kept
 * so tests can prove that what `publish` writes now is still read by clients of 0.2.0 in the field.
 * Only its imports were made local (isRawPublicKey as it was then; errors as plain Errors). Never edit
 * the rules: a change here would test against a client that does not exist.
 */
import semver from 'semver';
import { z } from 'zod';

function isRawPublicKey(value: string): boolean {
  return typeof value === 'string' && /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value);
}
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

const fileSchema = z.strictObject({
  path: relativePath,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
  url: z.string().min(1),
});

const versionSchema = z
  .strictObject({
    version: z.string().refine((v) => semver.valid(v) === v, 'must be a valid semver version, like 1.2.0'),
    channel: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lowercase channel name'),
    requires: z
      .strictObject({
        app: z.string().refine((r) => semver.validRange(r) !== null, 'must be a valid semver range').optional(),
      })
      .optional(),
    notes: z.string().optional(),
    publishedAt: z.string().optional(),
    rollout: z.number().min(0).max(1).optional(),
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

/** Parses a manifest as a 0.2.0 client did; throws naming the first offending field. */
export function parseManifestAsV020(value: unknown): unknown {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`a 0.2.0 client refuses the manifest at "${issue.path.join('.') || '(root)'}": ${issue.message}`);
}
