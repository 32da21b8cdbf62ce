/**
 * Names for a key set: the "threshold:key,key" form hosts configure and the short id a rotation uses to
 * say which set it rotates from. Synchronous and free of Node built-ins (the browser build uses it too).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/**
 * The key set as one string: threshold, then the distinct keys sorted. Empty for no keys.
 * @example
 * keySetName(['b', 'a'], 1) // '1:a,b'
 */
export function keySetName(keys: readonly string[], threshold: number): string {
  const sorted = [...new Set(keys)].sort();
  return sorted.length ? `${threshold}:${sorted.join(',')}` : '';
}

/**
 * The id of a key set, as a rotating manifest names the set it rotates from (`trust.previous`): the hex
 * SHA-256 of its name.
 * @example
 * keySetId([publicKey], 1) // '9c1f…' (64 hex characters)
 */
export function keySetId(keys: readonly string[], threshold: number): string {
  return bytesToHex(sha256(utf8ToBytes(keySetName(keys, threshold))));
}
