/**
 * Versions their publisher withdrew (`publish --pull`): never offered again, and an install running one
 * rolls back to the newest admissible version it kept.
 */
import { isAllowedByPolicy } from './versionPolicy.js';
import { isQuarantined } from './selectCandidate.js';
import type { InstalledVersion, Manifest, QuarantinedBuild, UpdaterConfig } from './types.js';

/** Whether the manifest lists `version` as pulled. */
export function isPulled(manifest: Manifest | undefined, version: string | undefined): boolean {
  return version !== undefined && (manifest?.versions.some((entry) => entry.version === version && entry.pulled === true) ?? false);
}

/**
 * The retained version an install whose active version was pulled goes back to: the newest kept one that
 * is not pulled itself, the host's policy allows (skip, pin) and no rollback quarantined. Null: none.
 * @example
 * pulledRollbackTarget(manifest, config, retained, quarantine)?.version // '1.1.0'
 */
export function pulledRollbackTarget(
  manifest: Manifest,
  config: Pick<UpdaterConfig, 'skip' | 'pin'>,
  retained: readonly InstalledVersion[],
  quarantine: readonly QuarantinedBuild[],
): InstalledVersion | null {
  // `retained` is newest first.
  return (
    retained.find(
      (kept) =>
        !isPulled(manifest, kept.version) &&
        isAllowedByPolicy(kept, config) &&
        !isQuarantined(kept, quarantine),
    ) ?? null
  );
}
