/**
 * The bytes a signature covers: the RFC 8785 (JSON Canonicalization Scheme) form of a JSON value, by the
 * `canonicalize` package. Keys sorted by UTF-16 code units, no whitespace, numbers in ECMAScript form.
 */
import canonicalize from 'canonicalize';
import { UpdateError } from '../errors.js';

/**
 * @example
 * canonicalJson({ b: 1, a: [true, 'x'] }) // '{"a":[true,"x"],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    // A lone surrogate, NaN, a cycle: what the server sent has no canonical form, so it cannot be signed.
    throw new UpdateError('MANIFEST_INVALID', `The signed part of the manifest has no canonical JSON form (${(error as Error).message}); re-publish it with \`model-updater publish\`.`, { cause: error });
  }
  if (text === undefined) throw new UpdateError('MANIFEST_INVALID', 'The signed part of the manifest is not a JSON value.');
  return text;
}
