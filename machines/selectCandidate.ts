import semver from 'semver';
import { isAllowedByPolicy, isRolledOutTo } from './versionPolicy.js';
import type { InstalledVersion, Manifest, ManifestFile, ManifestVersion, QuarantinedBuild, SkippedVersion, UpdaterConfig } from './types.js';

/**
 * The best version on offer for this install: on the configured channel or a more stable one, runnable
 * here by its `requires` (app range, runtimes, memory, accelerators), not skipped, inside the pin, rolled
 * out to this install, not quarantined, not pulled, and newer than the active one by semver (any version,
 * when the active one was pulled). Null when the install is up to date.
 */
export function selectCandidate(
  manifest: Manifest,
  config: Pick<UpdaterConfig, 'appVersion' | 'channel' | 'capabilities' | 'skip' | 'pin' | 'installId'>,
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

/**
 * Channels from most to least stable. A client takes versions from its own channel and from every more
 * stable one (a `beta` client is offered a newer `stable` version too). A channel not in this list (a
 * custom one, e.g. `acme-pilot`) takes its own versions and `stable`'s.
 */
export const CHANNEL_ORDER: readonly string[] = ['stable', 'beta', 'alpha', 'nightly'];

/**
 * Whether a client on `channel` takes versions published on `offered`.
 * @example
 * channelTakes('beta', 'stable') // true
 * channelTakes('stable', 'beta') // false
 */
export function channelTakes(channel: string, offered: string): boolean {
  if (offered === channel) return true;
  const rank = CHANNEL_ORDER.indexOf(offered);
  if (rank < 0) return false;
  const own = CHANNEL_ORDER.indexOf(channel);
  return own < 0 ? rank === 0 : rank < own;
}

export function isAdmissible(offered: ManifestVersion, config: Pick<UpdaterConfig, 'appVersion' | 'channel' | 'capabilities'>): boolean {
  return channelTakes(config.channel, offered.channel) && requirementProblem(offered, config) === null;
}

const KNOWN_REQUIREMENTS: ReadonlySet<string> = new Set(['app', 'runtime', 'minMemoryBytes', 'accelerators']);

/**
 * Why this host cannot run a version (its `requires`), or null when it can. A requirement this client
 * does not know is a reason too: a newer publisher's requirement it cannot judge. A capability the host
 * did not state is not checked.
 * @example
 * requirementProblem({ requires: { runtime: { onnxruntime: '>=1.17' } } }, { appVersion: null, capabilities: { runtime: { onnxruntime: '1.16.0' } } })
 * // 'needs runtime onnxruntime >=1.17; this host has 1.16.0'
 */
export function requirementProblem(
  offered: Pick<ManifestVersion, 'requires'>,
  config: Pick<UpdaterConfig, 'appVersion' | 'capabilities'>,
): string | null {
  const requires = offered.requires;
  if (!requires) return null;
  const unknown = Object.keys(requires).filter((key) => !KNOWN_REQUIREMENTS.has(key));
  if (unknown.length) return `needs ${unknown.map((key) => `"${key}"`).join(', ')}, a requirement this client does not know (update the app)`;
  const satisfies = (version: string, range: string) => semver.satisfies(version, range, { includePrerelease: true });
  if (requires.app !== undefined && config.appVersion !== null && !satisfies(config.appVersion, requires.app)) {
    return `needs app ${requires.app}; this app is ${config.appVersion}`;
  }
  const host = config.capabilities;
  if (!host) return null;
  for (const [name, range] of Object.entries(requires.runtime ?? {})) {
    if (!host.runtime) break;
    const has = Object.hasOwn(host.runtime, name) ? host.runtime[name] : undefined;
    if (has === undefined) return `needs runtime ${name} ${range}; this host has no ${name}`;
    if (!satisfies(has, range)) return `needs runtime ${name} ${range}; this host has ${has}`;
  }
  if (requires.minMemoryBytes !== undefined && host.memoryBytes !== undefined && host.memoryBytes < requires.minMemoryBytes) {
    return `needs ${requires.minMemoryBytes} bytes of memory; this host has ${host.memoryBytes}`;
  }
  if (requires.accelerators !== undefined && host.accelerators !== undefined && !requires.accelerators.some((kind) => host.accelerators!.includes(kind))) {
    return `needs an accelerator of kind ${requires.accelerators.join(' or ')}; this host has ${host.accelerators.join(', ') || 'none'}`;
  }
  return null;
}

/**
 * The versions on this client's channels, newer than the active one, that this host cannot run, with
 * the reason: what `check` reports as skipped.
 */
export function skippedVersions(
  manifest: Manifest,
  config: Pick<UpdaterConfig, 'appVersion' | 'channel' | 'capabilities'>,
  active: Pick<InstalledVersion, 'version'> | null,
): SkippedVersion[] {
  const skipped: SkippedVersion[] = [];
  for (const offered of manifest.versions) {
    if (!channelTakes(config.channel, offered.channel)) continue;
    if (active && !semver.gt(offered.version, active.version)) continue;
    const reason = requirementProblem(offered, config);
    if (reason !== null) skipped.push({ version: offered.version, reason });
  }
  return skipped.sort((a, b) => semver.rcompare(a.version, b.version));
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
    ...(candidate.metadata === undefined ? {} : { metadata: candidate.metadata }),
  };
}
