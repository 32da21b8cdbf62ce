/**
 * The trust options a host passes, checked at construction: keys well formed, a reachable threshold, and
 * no silent unsigned mode.
 */
import { UpdateError } from '../errors.js';
import { isRawPublicKey } from './keyFormat.js';

export interface TrustOptions {
  manifestUrl?: string | string[];
  trustedKeys?: string[];
  threshold?: number;
  allowUnsigned?: boolean;
  clockSkewMs?: number;
}

/**
 * @example
 * validateTrustOptions({ manifestUrl, trustedKeys: [pub], threshold: 1 }) // throws INVALID_ARGUMENT on a mistake
 */
export function validateTrustOptions(options: TrustOptions): void {
  const invalid = (message: string): never => {
    throw new UpdateError('INVALID_ARGUMENT', message);
  };
  const keys = options.trustedKeys ?? [];
  for (const key of keys) {
    if (typeof key !== 'string' || !isRawPublicKey(key)) {
      invalid(`trustedKeys holds "${String(key).slice(0, 60)}", which is not an Ed25519 public key (base64 of 32 bytes); pass the content of a .pub file from \`model-updater keygen\`.`);
    }
  }
  const distinct = new Set(keys).size;
  const threshold = options.threshold ?? 1;
  if (!Number.isInteger(threshold) || threshold < 1) invalid(`threshold must be an integer >= 1, got ${threshold}.`);
  if (distinct > 0 && threshold > distinct) invalid(`threshold ${threshold} is more than the ${distinct} trusted key(s): no manifest could ever be accepted.`);
  if (distinct > 0 && options.allowUnsigned) invalid('allowUnsigned cannot be combined with trustedKeys: with keys, every manifest must be signed. Drop one of them.');
  const skew = options.clockSkewMs ?? 0;
  if (!(Number.isFinite(skew) && skew >= 0)) invalid(`clockSkewMs must be a non-negative number, got ${skew}.`);
  const checks = [options.manifestUrl ?? []].flat().length > 0;
  if (checks && distinct === 0 && !options.allowUnsigned) {
    invalid('No trustedKeys were given: pass the public keys manifests are signed with (`model-updater keygen`), or allowUnsigned: true to accept unsigned manifests (not recommended).');
  }
}
