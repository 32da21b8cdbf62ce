/**
 * The trust decision on a fetched manifest: signatures against the trusted keys and threshold, key
 * rotation, rollback (serial) and freeze (expires). Pure: the time is the instant the check started.
 */
import type { Manifest, TrustState } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import { parseManifest } from '../manifest/schema.js';
import { looksSigned, parseEnvelope } from './envelope.js';
import { validSigners } from './verifySignatures.js';

export interface TrustPolicy {
  trust: TrustState;
  /** Accept manifests without checking signatures; only allowed with no trusted keys. */
  allowUnsigned: boolean;
  /** The instant the check started (ms since the epoch). */
  now: number;
  /** How far the manifest's `expires` may lie in the past before it counts as expired. */
  clockSkewMs: number;
}

export interface Accepted {
  manifest: Manifest;
  /** The trust state after accepting: the new serial, and the new keys of a rotation. */
  trust: TrustState;
  unsigned: boolean;
  rotated: boolean;
  /** The serial equals the highest accepted: nothing new, keep the manifest held. */
  sameSerial: boolean;
}

/**
 * Decides whether a parsed manifest document (bare or `{ signed, signatures }`) is trusted.
 * @example
 * const { manifest, trust } = await acceptManifest(parseStrictJson(bytes, url), { trust, allowUnsigned: false, now, clockSkewMs: 300_000 }, url)
 */
export async function acceptManifest(document: unknown, policy: TrustPolicy, source: string): Promise<Accepted> {
  const { trust } = policy;
  const signedMode = trust.keys.length > 0;
  if (!looksSigned(document)) {
    if (signedMode || !policy.allowUnsigned) {
      throw new UpdateError('SIGNATURE_INVALID', `${source} is not signed, and this updater only accepts manifests signed by its trusted keys. Publish with \`model-updater publish --key <private key>\`; nothing was downloaded.`);
    }
    return afterSignatures(parseManifest(document, source), trust, policy, source, { unsigned: true, rotated: false });
  }
  const envelope = parseEnvelope(document, source);
  if (!signedMode) {
    if (!policy.allowUnsigned) throw new UpdateError('SIGNATURE_INVALID', `No trusted keys are configured to check ${source}; pass trustedKeys (or allowUnsigned: true).`);
    return afterSignatures(parseManifest(envelope.signed, source), trust, policy, source, { unsigned: true, rotated: false });
  }
  const signers = await validSigners(envelope, trust.keys);
  if (signers.size < trust.threshold) {
    throw new UpdateError(
      'SIGNATURE_INVALID',
      `${source} has ${signers.size} valid signature(s) by trusted keys, ${trust.threshold} needed. It was not signed by the trusted keys, or it was altered; nothing was downloaded and the active model is unchanged.`,
    );
  }
  const manifest = parseManifest(envelope.signed, source);
  if (manifest.serial === undefined || manifest.expires === undefined) {
    throw new UpdateError('MANIFEST_INVALID', `${source} is signed but has no ${manifest.serial === undefined ? '"serial"' : '"expires"'}; re-publish it with \`model-updater publish --key\`.`);
  }
  let next = trust;
  let rotated = false;
  if (manifest.trust && !sameKeySet(manifest.trust, trust)) {
    // A rotation: the current keys vouch for the new set, and the new set proves it holds its keys.
    const newKeys = [...new Set(manifest.trust.keys)].sort();
    const newSigners = await validSigners(envelope, newKeys);
    if (newSigners.size < manifest.trust.threshold) {
      throw new UpdateError(
        'SIGNATURE_INVALID',
        `${source} rotates to new keys but is signed by ${newSigners.size} of them, ${manifest.trust.threshold} needed. Sign the rotating manifest with both the old and the new keys.`,
      );
    }
    next = { ...trust, keys: newKeys, threshold: manifest.trust.threshold };
    rotated = true;
  }
  return afterSignatures(manifest, next, policy, source, { unsigned: false, rotated });
}

/** Rollback and freeze checks, once the content is trusted (or explicitly accepted unsigned). */
function afterSignatures(manifest: Manifest, next: TrustState, policy: TrustPolicy, source: string, flags: { unsigned: boolean; rotated: boolean }): Accepted {
  const highest = policy.trust.serial;
  let sameSerial = false;
  if (manifest.serial !== undefined && highest !== null) {
    if (manifest.serial < highest) {
      throw new UpdateError(
        'ROLLBACK_REJECTED',
        `${source} has serial ${manifest.serial}, older than serial ${highest} already accepted: an old manifest is being replayed (a rollback attack, or a stale mirror). Nothing was downloaded.`,
      );
    }
    sameSerial = manifest.serial === highest;
  }
  if (manifest.expires !== undefined) {
    const expires = Date.parse(manifest.expires);
    if (!(expires + policy.clockSkewMs >= policy.now)) {
      throw expired(source, manifest.expires, policy.now);
    }
  }
  if (sameSerial) return { manifest, trust: policy.trust, sameSerial, unsigned: flags.unsigned, rotated: false };
  const serial = manifest.serial ?? highest;
  return { manifest, trust: { ...next, serial }, sameSerial, ...flags };
}

export function expired(source: string, expires: string, now: number): UpdateError {
  return new UpdateError(
    'MANIFEST_EXPIRED',
    `${source} expired at ${expires} (the check started at ${new Date(now).toISOString()}): the update service is frozen or stale. Ask the publisher to re-publish; the active model is unchanged.`,
  );
}

/** Whether a manifest's declared key set is the one already trusted. */
function sameKeySet(declared: { keys: string[]; threshold: number }, trust: TrustState): boolean {
  const keys = [...new Set(declared.keys)].sort();
  return declared.threshold === trust.threshold && keys.length === trust.keys.length && keys.every((key, i) => key === trust.keys[i]);
}

/**
 * The trust state a host configuration starts from.
 * @example
 * initialTrust(['base64 key'], 1) // { keys: [...], threshold: 1, serial: null, anchor: '1:...' }
 */
export function initialTrust(keys: readonly string[], threshold: number): TrustState {
  const sorted = [...new Set(keys)].sort();
  return { keys: sorted, threshold, serial: null, anchor: sorted.length ? `${threshold}:${sorted.join(',')}` : '' };
}
