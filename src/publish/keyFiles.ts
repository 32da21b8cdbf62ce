/**
 * Key files on disk: `<prefix>.pub` (base64 of the raw public key, one line) and `<prefix>.key`
 * (PKCS#8 PEM, mode 0600, never overwritten).
 */
import type { KeyObject } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { UpdateError } from '../core/errors.js';
import { generateKeyPair, keyIdOf, parsePrivateKeyText, parsePublicKeyText } from './keys.js';

async function readText(path: string, what: string): Promise<string> {
  return readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UpdateError('INVALID_ARGUMENT', `Cannot read the ${what} ${path} (${error.code ?? error.message}); check the path.`);
  });
}

/**
 * @example
 * const trustedKeys = [await readPublicKeyFile('release.pub')]
 */
export async function readPublicKeyFile(path: string): Promise<string> {
  return parsePublicKeyText(await readText(path, 'public key file'), path);
}

/**
 * @example
 * const key = await readPrivateKeyFile('release.key')
 */
export async function readPrivateKeyFile(path: string): Promise<KeyObject> {
  return parsePrivateKeyText(await readText(path, 'private key file'), path);
}

async function writeNew(path: string, content: string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'EEXIST' ? 'it already exists; choose another --out or move the old key away first' : error.message;
    throw new UpdateError('INVALID_ARGUMENT', `Cannot write ${path}: ${why}.`);
  });
  try {
    await handle.writeFile(content);
    await handle.chmod(mode); // the umask may have narrowed or widened the creation mode
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new Ed25519 key pair to `<prefix>.pub` and `<prefix>.key` (mode 0600).
 * @example
 * const { keyid } = await writeKeyPair('keys/release') // keys/release.pub, keys/release.key
 */
export async function writeKeyPair(prefix: string): Promise<{ publicKeyPath: string; privateKeyPath: string; publicKey: string; keyid: string }> {
  const pair = generateKeyPair();
  const privateKeyPath = `${prefix}.key`;
  const publicKeyPath = `${prefix}.pub`;
  await writeNew(privateKeyPath, pair.privateKeyPem, 0o600);
  await writeNew(publicKeyPath, `${pair.publicKey}\n`, 0o644);
  return { publicKeyPath, privateKeyPath, publicKey: pair.publicKey, keyid: keyIdOf(pair.publicKey) };
}
