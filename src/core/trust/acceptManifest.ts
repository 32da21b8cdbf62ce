/**
 * The trust decision on a fetched manifest: signatures against the trusted keys and threshold, key
 * rotation, rollback (serial) and freeze (expires). Pure: the time is the instant the check started.
 */
import type { Manifest, TrustState } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import { parseManifest } from '../manifest/schema.js';
import { looksSigned, parseEnvelope } from './envelope.js';
import { keySetId, keySetName } from './keySet.js';
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
      `${source} has ${signers.size} valid signature(s) by trusted keys, ${trust.threshold} needed. ${unsignedRotationHint(envelope.signed, trust) ?? 'It was not signed by the trusted keys, or it was altered'}; nothing was downloaded and the active model is unchanged.`,
    );
  }
  const manifest = parseManifest(envelope.signed, source);
  if (manifest.serial === undefined || manifest.expires === undefined) {
    throw new UpdateError('MANIFEST_INVALID', `${source} is signed but has no ${manifest.serial === undefined ? '"serial"' : '"expires"'}; re-publish it with \`model-updater publish --key\`.`);
  }
  const declared = manifest.trust;
  if (!declared) return afterSignatures(manifest, trust, policy, source, { unsigned: false, rotated: false, chained: false });
  // The current set, re-declared (every manifest after a rotation carries it): no rotation, and its number
  // is not taken either, so that a leaked key cannot push it up and have the publisher's recovery refused.
  if (sameKeySet(declared, trust)) return afterSignatures(manifest, trust, policy, source, { unsigned: false, rotated: false, chained: false });
  // A rotation: the current keys vouch for the new set, and the new set proves it holds its keys.
  const chained = declared.version !== undefined;
  if (chained) checkRotationChain(declared as ChainedTrust, trust, source);
  const newKeys = [...new Set(declared.keys)].sort();
  const newSigners = await validSigners(envelope, newKeys);
  if (newSigners.size < declared.threshold) {
    throw new UpdateError(
      'SIGNATURE_INVALID',
      `${source} rotates to new keys but is signed by ${newSigners.size} of them, ${declared.threshold} needed. Sign the rotating manifest with both the old and the new keys.`,
    );
  }
  // A rotation published without a chain (before chains existed) keeps the current rotation number.
  const next: TrustState = { ...trust, keys: newKeys, threshold: declared.threshold, ...(chained ? { rotation: declared.version! } : {}) };
  return afterSignatures(manifest, next, policy, source, { unsigned: false, rotated: true, chained });
}

type ChainedTrust = { keys: string[]; threshold: number; version: number; previous: string };

/**
 * A chained rotation must rotate from the keys trusted now (`previous`) and come after the rotation that
 * installed them (`version`): one that skips a rotation, or replays an old one, is refused.
 */
function checkRotationChain(declared: ChainedTrust, trust: TrustState, source: string): void {
  // 0: the configured keys, whose place in the chain is not known (a host may ship the keys of a later
  // rotation); from the first rotation taken on, each must be the next.
  const current = trust.rotation ?? 0;
  if (declared.version <= current) {
    throw new UpdateError(
      'ROLLBACK_REJECTED',
      `${source} replays key rotation ${declared.version}, but this updater already follows rotation ${current}: an old rotation is being replayed (an attack, or a stale mirror). Nothing was downloaded; publish a new manifest (\`model-updater publish --key\`) signed by the current keys.`,
    );
  }
  if (declared.previous !== keySetId(trust.keys, trust.threshold)) {
    throw new UpdateError(
      'SIGNATURE_INVALID',
      `${source} is key rotation ${declared.version}, which rotates from another key set than the one this updater trusts (at rotation ${current}): a rotation in between was skipped. Serve each rotating manifest until clients have taken it, or configure the current keys (trustedKeys); nothing was downloaded.`,
    );
  }
  if (current > 0 && declared.version !== current + 1) {
    throw new UpdateError(
      'SIGNATURE_INVALID',
      `${source} is key rotation ${declared.version}, but this updater follows rotation ${current}: rotation ${current + 1} was skipped. Serve each rotating manifest until clients have taken it; nothing was downloaded.`,
    );
  }
}

/** Why an insufficiently signed document that announces a chained rotation cannot be taken, for the message. */
function unsignedRotationHint(signed: unknown, trust: TrustState): string | null {
  const declared = (signed as { trust?: { version?: unknown; previous?: unknown } }).trust;
  if (typeof declared !== 'object' || declared === null || typeof declared.version !== 'number') return null;
  const current = trust.rotation ?? 0;
  if (declared.version <= current) return `It is key rotation ${declared.version}, older than rotation ${current} this updater follows: an old rotation is being replayed`;
  if (declared.previous !== keySetId(trust.keys, trust.threshold)) {
    return `It is key rotation ${declared.version}, which rotates from keys this updater does not trust: a rotation in between was skipped (serve each rotating manifest until clients have taken it)`;
  }
  return null;
}

/** Rollback and freeze checks, once the content is trusted (or explicitly accepted unsigned). */
function afterSignatures(manifest: Manifest, next: TrustState, policy: TrustPolicy, source: string, flags: { unsigned: boolean; rotated: boolean; chained?: boolean }): Accepted {
  const highest = policy.trust.serial;
  let sameSerial = false;
  // Fast-forward recovery: a chained rotation, signed by the current threshold and the new keys, sets the
  // serial floor to its own serial, even below a serial a leaked key pushed up.
  if (flags.chained) {
    if (manifest.serial === undefined) throw new UpdateError('MANIFEST_INVALID', `${source} rotates keys but has no "serial"; re-publish it with \`model-updater publish --key\`.`);
  } else if (manifest.serial !== undefined && highest !== null) {
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
  // A rotation at the serial already accepted still rotates.
  if (sameSerial && !flags.rotated) return { manifest, trust: next, sameSerial, unsigned: flags.unsigned, rotated: false };
  const serial = manifest.serial ?? highest;
  return { manifest, trust: { ...next, serial }, sameSerial: false, unsigned: flags.unsigned, rotated: flags.rotated };
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
  return { keys: [...new Set(keys)].sort(), threshold, serial: null, anchor: keySetName(keys, threshold) };
}
