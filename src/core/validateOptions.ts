/**
 * Checks the options a host passes, so a mistake is a clear INVALID_ARGUMENT at construction, not an odd
 * failure in the middle of an update.
 */
import { resolveSegmentOptions } from './log/segmentOptions.js';
import semver from 'semver';
import type { HostCapabilities, UpdaterConfig } from '../../machines/types.js';
import { UpdateError } from './errors.js';
import { resolvePolicy } from './updatePolicy.js';
import { validateTrustOptions } from './trust/trustOptions.js';
import { RateBudget } from './download/rateBudget.js';
import { REAL_TIMERS, resolveConnections, resolveLimits, type DownloadLimits } from './download/transferGuard.js';
import type { UpdaterOptions } from './createUpdater.js';

function invalid(message: string): never {
  throw new UpdateError('INVALID_ARGUMENT', message);
}

/** The `bundled` option's shape; where its path may be (not in the model folder) is the platform's check. */
function validateBundled(bundled: UpdaterOptions<any>['bundled']): void {
  if (bundled === undefined) return;
  if (typeof bundled !== 'object' || bundled === null) invalid('bundled must be { version, path }: the model shipped inside the app.');
  if (typeof bundled.version !== 'string' || semver.valid(bundled.version) !== bundled.version) {
    invalid(`bundled.version "${String(bundled.version)}" is not a semver version like 1.0.0; give the version of the model the app ships.`);
  }
  if (typeof bundled.path !== 'string' || bundled.path.length === 0) {
    invalid('bundled.path is missing: give the folder inside the app bundle that holds the shipped model\'s files.');
  }
}

/** `download`: the guards' limits, the connections and the cap, each a clear INVALID_ARGUMENT when wrong. */
function validateDownloadLimits(download: DownloadLimits | undefined): void {
  resolveLimits(download);
  resolveConnections(download);
  new RateBudget(download?.maxBytesPerSecond, REAL_TIMERS);
}

export function validateOptions(options: UpdaterOptions<any>): UpdaterConfig {
  resolveSegmentOptions(options.log);
  for (const manifestUrl of [options.manifestUrl ?? []].flat()) {
    let url: URL;
    try {
      url = new URL(manifestUrl);
    } catch {
      invalid(`manifestUrl "${manifestUrl}" is not an absolute URL; pass e.g. https://models.example.com/asr/manifest.json.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(`manifestUrl must be http: or https:, got ${url.protocol}`);
  }
  validateTrustOptions(options);
  validateDownloadLimits(options.download);
  if (options.appVersion !== undefined && semver.valid(options.appVersion) === null) {
    invalid(`appVersion "${options.appVersion}" is not a semver version like 2.3.0.`);
  }
  validateBundled(options.bundled);
  const policy = resolvePolicy(options.policy);
  const keep = options.keepVersions ?? 2;
  if (!Number.isInteger(keep) || keep < 2) {
    invalid(`keepVersions must be an integer >= 2 (the active version and one to roll back to), got ${keep}.`);
  }
  if (options.activation !== undefined && options.activation !== 'immediate' && options.activation !== 'next-start') {
    invalid(`activation must be 'immediate' or 'next-start', got ${JSON.stringify(options.activation)}.`);
  }
  for (const [hook, ms] of Object.entries(options.hookTimeouts ?? {})) {
    if (!['migrate', 'load', 'healthCheck', 'unload'].includes(hook)) invalid(`hookTimeouts.${hook} is not a hook; the hooks are migrate, load, healthCheck and unload.`);
    if (!(typeof ms === 'number' && Number.isFinite(ms) && ms > 0)) invalid(`hookTimeouts.${hook} must be a positive number of milliseconds, got ${ms}.`);
  }
  const positive = (name: string, value: number | undefined, fallback: number) => {
    const v = value ?? fallback;
    if (!(Number.isFinite(v) && v >= 0)) invalid(`${name} must be a non-negative number, got ${v}.`);
    return v;
  };
  const capabilities = options.capabilities === undefined ? undefined : validateCapabilities(options.capabilities);
  if (options.channel !== undefined && !/^[a-z0-9][a-z0-9._-]*$/.test(options.channel)) {
    invalid(`channel "${options.channel}" is not a channel name (lowercase letters, digits, ".", "_", "-"), e.g. stable or beta.`);
  }
  return {
    appVersion: options.appVersion ?? null,
    channel: options.channel ?? 'stable',
    // Only when given: a host that states none keeps the configuration its log was written with.
    ...(capabilities ? { capabilities } : {}),
    approval: policy.approval,
    skip: policy.skip,
    pin: policy.pin,
    // Filled in by start(), which reads (or creates) the install's id.
    installId: null,
    conditionsPollMs: policy.conditionsPollMs,
    maxDownloadAttempts: Math.max(1, positive('retry.maxDownloadAttempts', options.retry?.maxDownloadAttempts, 5)),
    maxCheckAttempts: Math.max(1, positive('retry.maxCheckAttempts', options.retry?.maxCheckAttempts, 5)),
    retryBaseDelayMs: positive('retry.baseDelayMs', options.retry?.baseDelayMs, 1_000),
    maxRetryDelayMs: positive('retry.maxDelayMs', options.retry?.maxDelayMs, 5 * 60_000),
    diskMargin: positive('diskMargin', options.diskMargin, 0.05),
    keepVersions: keep,
    maxRetainedBytes: positive('maxRetainedBytes', options.maxRetainedBytes, Number.MAX_SAFE_INTEGER),
    confirmAfterLoads: Math.max(1, positive('probation.confirmAfterLoads', options.probation?.confirmAfterLoads, 2)),
    maxFailedStarts: Math.max(1, positive('probation.maxFailedStarts', options.probation?.maxFailedStarts, 2)),
  };
}

/** The host's capabilities, checked and copied (plain data: it is journaled with the configuration). */
function validateCapabilities(given: HostCapabilities): HostCapabilities {
  if (typeof given !== 'object' || given === null) invalid('capabilities must be an object like { runtime: { onnxruntime: "1.18.0" }, memoryBytes: 8e9, accelerators: ["webgpu"] }.');
  const name = /^[a-z0-9][a-z0-9._-]*$/;
  const capabilities: HostCapabilities = {};
  if (given.runtime !== undefined) {
    const runtime: Record<string, string> = {};
    for (const [runtimeName, version] of Object.entries(given.runtime)) {
      if (!name.test(runtimeName)) invalid(`capabilities.runtime: "${runtimeName}" is not a runtime name (lowercase letters, digits, ".", "_", "-").`);
      if (typeof version !== 'string' || semver.valid(version) === null) invalid(`capabilities.runtime.${runtimeName} must be a semver version like 1.18.0, got ${JSON.stringify(version)}.`);
      runtime[runtimeName] = version;
    }
    capabilities.runtime = runtime;
  }
  if (given.memoryBytes !== undefined) {
    if (!Number.isSafeInteger(given.memoryBytes) || given.memoryBytes < 0) invalid(`capabilities.memoryBytes must be a whole number of bytes, got ${given.memoryBytes}.`);
    capabilities.memoryBytes = given.memoryBytes;
  }
  if (given.accelerators !== undefined) {
    if (!Array.isArray(given.accelerators) || given.accelerators.some((kind) => typeof kind !== 'string' || !name.test(kind))) {
      invalid(`capabilities.accelerators must be a list of lowercase kinds like ["webgpu", "cuda"], got ${JSON.stringify(given.accelerators)}.`);
    }
    capabilities.accelerators = [...new Set(given.accelerators)].sort();
  }
  return capabilities;
}
