/**
 * Key text formats and key ids, platform-neutral (no node: imports, so the browser build can verify).
 *
 * A public key is the base64 of its raw 32 bytes; its id (`keyid`) is the lowercase hex SHA-256 of
 * those 32 bytes.
 */

/** Whether a string is the base64 of exactly 32 bytes, in canonical form (43 characters and one "="). */
export function isRawPublicKey(value: string): boolean {
  return typeof value === 'string' && /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value);
}

/** Base64 to bytes, with atob (Node 20 and browsers). */
export function decodeBase64(value: string): Uint8Array {
  const binary = atob(value);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * A key's id: the hex SHA-256 of its raw 32 bytes (WebCrypto).
 * @example
 * await keyIdOfRaw(publicKey) // '3f1c…' (64 hex characters)
 */
export async function keyIdOfRaw(raw: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', decodeBase64(raw) as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
