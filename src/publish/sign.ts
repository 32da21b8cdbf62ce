/**
 * Signing a manifest (Node, for `publish`): Ed25519 over the canonical JSON of `signed`.
 */
import { sign, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../core/trust/canonical.js';
import type { SignedEnvelope } from '../core/trust/envelope.js';
import { keyIdOf, rawPublicKey } from './keys.js';

/**
 * Signs `signed` with each private key.
 * @example
 * const envelope = signEnvelope(manifest, [parsePrivateKeyText(pem, 'release.key')])
 */
export function signEnvelope<T>(signed: T, privateKeys: readonly KeyObject[]): SignedEnvelope<T> {
  const data = Buffer.from(canonicalJson(signed), 'utf8');
  const signatures = privateKeys.map((key) => ({ keyid: keyIdOf(rawPublicKey(key)), sig: sign(null, data, key).toString('base64') }));
  return { signed, signatures };
}
