import semver from 'semver';
import type { InstalledVersion, Manifest, ManifestVersion, UpdaterConfig } from './types.js';

/**
 * The best version on offer for this install: on the configured channel, admitted by its `requires.app`
 * range, and newer than the active one by semver. Null when the install is up to date.
 */
export function selectCandidate(
  manifest: Manifest,
  config: Pick<UpdaterConfig, 'appVersion' | 'channel'>,
  active: InstalledVersion | null,
): ManifestVersion | null {
  let best: ManifestVersion | null = null;
  for (const offered of manifest.versions) {
    if (!isAdmissible(offered, config)) continue;
    if (active && !semver.gt(offered.version, active.version)) continue;
    if (!best || semver.gt(offered.version, best.version)) best = offered;
  }
  return best;
}

export function isAdmissible(offered: ManifestVersion, config: Pick<UpdaterConfig, 'appVersion' | 'channel'>): boolean {
  if (offered.channel !== config.channel) return false;
  const range = offered.requires?.app;
  return range === undefined || config.appVersion === null || semver.satisfies(config.appVersion, range, { includePrerelease: true });
}

/** Bytes a candidate needs on disk. */
export function totalSize(candidate: Pick<ManifestVersion, 'files'>): number {
  return candidate.files.reduce((sum, file) => sum + file.size, 0);
}

/** The manifest entry as it will be once installed: what the active pointer records. */
export function toInstalled(candidate: ManifestVersion): InstalledVersion {
  return {
    version: candidate.version,
    files: candidate.files.map(({ path, size, sha256 }) => ({ path, size, sha256 })),
  };
}
