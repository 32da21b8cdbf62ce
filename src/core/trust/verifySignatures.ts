/**
 * Signature checks over the canonical JSON of `signed`, with WebCrypto's Ed25519 (Node 20 and current
 * browsers): no crypto of our own, and no node: import, so the browser build verifies the same way.
 */
import { canonicalJson } from './canonical.js';
import type { SignedEnvelope } from './envelope.js';
import { decodeBase64, keyIdOfRaw } from './keyFormat.js';

/**
 * The trusted keys (base64 raw) that produced a valid signature over `signed`. Signatures by unknown
 * keys, bad signatures and repeats of one key count for nothing.
 * @example
 * if ((await validSigners(envelope, trustedKeys)).size < threshold) throw ...
 */
export async function validSigners(envelope: SignedEnvelope, keys: readonly string[]): Promise<Set<string>> {
  const data = new TextEncoder().encode(canonicalJson(envelope.signed));
  const byId = new Map<string, string>();
  for (const key of keys) byId.set(await keyIdOfRaw(key), key);
  const signers = new Set<string>();
  for (const { keyid, sig } of envelope.signatures) {
    const key = byId.get(keyid);
    if (key === undefined || signers.has(key)) continue;
    const signature = decodeBase64(sig);
    if (signature.length !== 64) continue;
    const publicKey = await crypto.subtle.importKey('raw', decodeBase64(key) as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify']);
    if (await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, signature as Uint8Array<ArrayBuffer>, data)) signers.add(key);
  }
  return signers;
}
