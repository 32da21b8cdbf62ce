/**
 * The update policy's pure parts: which versions an install may take and whether it asks first.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import semver from 'semver';
import type { Approval, ApprovalRule, ManifestVersion, UpdaterConfig } from './types.js';

/**
 * The approval rule for an update from `from` to `to`: a rule for every update, or one per semver level
 * (a pre-release counts as its level: 1.0.0 → 2.0.0-rc.1 is major).
 * @example
 * approvalFor({ patch: 'auto', minor: 'auto', major: 'ask' }, '1.4.2', '2.0.0') // 'ask'
 */
export function approvalFor(approval: Approval, from: string | null, to: string): ApprovalRule {
  if (typeof approval === 'string') return approval;
  if (from === null) return approval.major ?? 'auto';
  const diff = semver.diff(from, to) ?? 'patch';
  const level = diff.replace(/^pre/, '').replace(/^release$/, 'patch') as 'major' | 'minor' | 'patch';
  return approval[level] ?? 'auto';
}

/**
 * This install's place in a version's staged rollout, in [0, 1): a hash of the install id and the
 * version, so it is stable as the fraction grows (no one who has a version loses it) and different
 * installs go first for different versions.
 */
export function rolloutBucket(installId: string, version: string): number {
  const digest = sha256(utf8ToBytes(`${installId}/${version}`));
  const word = ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
  return word / 2 ** 32;
}

/** Whether a staged rollout has reached this install. An install without an id waits for 100 %. */
export function isRolledOutTo(offered: Pick<ManifestVersion, 'version' | 'rollout'>, installId: string | null): boolean {
  const fraction = offered.rollout;
  if (fraction === undefined || fraction >= 1) return true;
  return installId !== null && rolloutBucket(installId, offered.version) < fraction;
}

/** The host's own limits: versions it skips, and the range it is pinned to. */
export function isAllowedByPolicy(offered: Pick<ManifestVersion, 'version'>, config: Pick<UpdaterConfig, 'skip' | 'pin'>): boolean {
  if (config.skip.includes(offered.version)) return false;
  return config.pin === null || semver.satisfies(offered.version, config.pin, { includePrerelease: true });
}
