/**
 * The signed form of a manifest: `{ signed, signatures: [{ keyid, sig }] }`, each `sig` the base64
 * Ed25519 signature of the canonical JSON (RFC 8785) of `signed`, by the key whose id is `keyid`.
 */
import { z } from 'zod';
import { UpdateError } from '../errors.js';

export interface Signature {
  /** Hex SHA-256 of the signing key's raw public bytes. */
  keyid: string;
  /** Base64 Ed25519 signature of canonicalJson(signed). */
  sig: string;
}

export interface SignedEnvelope<T = unknown> {
  signed: T;
  signatures: Signature[];
}

const envelopeSchema = z.strictObject({
  signed: z.record(z.string(), z.unknown()),
  signatures: z
    .array(
      z.strictObject({
        keyid: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
        sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be the base64 of a 64-byte Ed25519 signature'),
      }),
    )
    .max(64, 'more than 64 signatures'),
});

/** Whether a parsed JSON document has the signed-envelope shape (as opposed to a bare manifest). */
export function looksSigned(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && ('signed' in value || 'signatures' in value);
}

/**
 * Checks the envelope's shape (not its signatures).
 * @example
 * const envelope = parseEnvelope(JSON.parse(text), 'the manifest')
 */
export function parseEnvelope(value: unknown, source: string): SignedEnvelope {
  const parsed = envelopeSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(root)';
  throw new UpdateError('MANIFEST_INVALID', `${source} is not a valid signed manifest at "${field}": ${issue.message}. Re-publish it with \`model-updater publish --key\`.`);
}
