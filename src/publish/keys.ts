/**
 * Ed25519 keys as model-updater stores and names them, on node:crypto (no crypto of our own).
 *
 * - A public key is written as the base64 of its raw 32 bytes (one line). PEM (SPKI) is read too, so
 *   keys made with `openssl genpkey -algorithm ed25519` work.
 * - A private key is PKCS#8 PEM.
 * - A key's id (`keyid`) is the lowercase hex SHA-256 of the public key's raw 32 bytes.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { UpdateError } from '../core/errors.js';
import { isRawPublicKey } from '../core/trust/keyFormat.js';

export interface KeyPair {
  /** Base64 of the raw 32-byte public key: what clients are configured with. */
  publicKey: string;
  /** PKCS#8 PEM: what `publish --key` reads. Keep it secret. */
  privateKeyPem: string;
}

const RAW_KEY_BYTES = 32;

/**
 * Makes a new Ed25519 key pair.
 * @example
 * const { publicKey, privateKeyPem } = generateKeyPair()
 */
export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: rawPublicKey(publicKey), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** The base64 raw form of a public key object (or of the public half of a private one). */
export function rawPublicKey(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new UpdateError('INVALID_ARGUMENT', 'The key is not an Ed25519 key; make one with `model-updater keygen`.');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

export { isRawPublicKey };

/**
 * The node:crypto key object of a base64 raw public key.
 * @example
 * verify(null, data, publicKeyObject(trustedKey), signature)
 */
export function publicKeyObject(raw: string): KeyObject {
  if (!isRawPublicKey(raw)) {
    throw new UpdateError('INVALID_ARGUMENT', `"${raw.slice(0, 60)}" is not an Ed25519 public key (base64 of 32 bytes); use the .pub file written by \`model-updater keygen\`.`);
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw, 'base64').toString('base64url') }, format: 'jwk' });
}

/**
 * A key's id: the lowercase hex SHA-256 of its raw 32 bytes.
 * @example
 * keyIdOf(publicKey) // '3f1c…' (64 hex characters)
 */
export function keyIdOf(raw: string): string {
  if (!isRawPublicKey(raw)) throw new UpdateError('INVALID_ARGUMENT', 'Cannot compute a key id: not a base64 Ed25519 public key.');
  return createHash('sha256').update(Buffer.from(raw, 'base64')).digest('hex');
}

/**
 * Reads the text of a public key file: base64 of the raw key, or a PEM SPKI block.
 * @example
 * const key = parsePublicKeyText(await readFile('release.pub', 'utf8'), 'release.pub')
 */
export function parsePublicKeyText(text: string, source: string): string {
  const trimmed = text.trim();
  if (isRawPublicKey(trimmed)) return trimmed;
  if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    try {
      return rawPublicKey(createPublicKey(trimmed));
    } catch (error) {
      if (error instanceof UpdateError) throw error;
    }
  }
  if (trimmed.includes('PRIVATE KEY')) {
    throw new UpdateError('INVALID_ARGUMENT', `${source} holds a private key; give the .pub file, and keep the .key file secret.`);
  }
  throw new UpdateError('INVALID_ARGUMENT', `${source} is not an Ed25519 public key (base64 of 32 bytes, or PEM); use the .pub file written by \`model-updater keygen\`.`);
}

/**
 * Reads the text of a private key file (PKCS#8 PEM).
 * @example
 * const key = parsePrivateKeyText(await readFile('release.key', 'utf8'), 'release.key')
 */
export function parsePrivateKeyText(text: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new UpdateError('INVALID_ARGUMENT', `${source} is not a private key in PEM form; use the .key file written by \`model-updater keygen\`.`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new UpdateError('INVALID_ARGUMENT', `${source} is a ${key.asymmetricKeyType} key; model-updater signs with Ed25519 keys (\`model-updater keygen\`).`);
  }
  return key;
}
