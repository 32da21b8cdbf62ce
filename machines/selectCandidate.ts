import semver from 'semver';
import { isAllowedByPolicy, isRolledOutTo } from './versionPolicy.js';
import type { InstalledVersion, Manifest, ManifestFile, ManifestVersion, QuarantinedBuild, UpdaterConfig } from './types.js';

/**
 * The best version on offer for this install: on the configured channel, admitted by its `requires.app`
 * range, not skipped, inside the pin, rolled out to this install, not quarantined, not pulled, and newer
 * than the active one by semver (any version, when the active one was pulled). Null when the install is up to date.
 */
export function selectCandidate(
  manifest: Manifest,
  config: Pick<UpdaterConfig, 'appVersion' | 'channel' | 'skip' | 'pin' | 'installId'>,
  active: InstalledVersion | null,
  quarantine: readonly QuarantinedBuild[] = [],
): ManifestVersion | null {
  let best: ManifestVersion | null = null;
  // An install running a pulled version (and keeping nothing to go back to) may take an older one.
  const activePulled = active !== null && manifest.versions.some((entry) => entry.version === active.version && entry.pulled === true);
  for (const offered of manifest.versions) {
    if (offered.pulled === true || !isAdmissible(offered, config)) continue;
    if (!isAllowedByPolicy(offered, config) || !isRolledOutTo(offered, config.installId)) continue;
    if (isQuarantined(offered, quarantine)) continue;
    if (active && !activePulled && !semver.gt(offered.version, active.version)) continue;
    if (!best || semver.gt(offered.version, best.version)) best = offered;
  }
  return best;
}

export function isAdmissible(offered: ManifestVersion, config: Pick<UpdaterConfig, 'appVersion' | 'channel'>): boolean {
  if (offered.channel !== config.channel) return false;
  const range = offered.requires?.app;
  return range === undefined || config.appVersion === null || semver.satisfies(config.appVersion, range, { includePrerelease: true });
}

/** An interrupted update gets one more try; any other reason to leave a build is final for that build. */
export function isQuarantined(offered: { version: string; files: ReadonlyArray<Pick<ManifestFile, 'path' | 'sha256'>> }, quarantine: readonly QuarantinedBuild[]): boolean {
  const entry = quarantine.find((bad) => bad.version === offered.version && bad.build === buildId(offered));
  return entry !== undefined && (entry.reason !== 'INTERRUPTED' || entry.count >= 2);
}

/** A build's identity: the same version republished with other bytes is another build. */
export function buildId(version: { files: ReadonlyArray<Pick<ManifestFile, 'path' | 'sha256'>> }): string {
  return version.files
    .map((file) => `${file.path}:${file.sha256}`)
    .sort()
    .join(',');
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
