import { parseArgs } from 'node:util';
import { createModelUpdater, type UpdateResult } from '../../node/createModelUpdater.js';
import { channelTakes, totalSize } from '../../../machines/selectCandidate.js';
import type { HostCapabilities, Manifest } from '../../../machines/types.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';
import { UpdateError } from '../../core/errors.js';
import { readPublicKeyFile } from '../../publish/keyFiles.js';

const UNSIGNED_WARNING =
  '--allow-unsigned: manifests are not checked for a signature; whoever can change what the server sends can install models here. Sign with `publish --key` and pass --trusted-key.';
const trustUsage = '(--trusted-key <public key file>... [--threshold n] | --allow-unsigned) [--clock-skew <seconds>]';
const hostUsage = '[--app-version v] [--channel c] [--runtime <name>=<version>]... [--memory <bytes | 8g>] [--accelerator <kind>]...';
export const checkUsage = `check --manifest <url>... --dir <dir> ${trustUsage} ${hostUsage} [--proxy <url>] [--json]`;
export const updateUsage = `update --manifest <url>... --dir <dir> ${trustUsage} ${hostUsage} [--proxy <url>] [--max-rate <bytes/s | 5m | 500k>] [--stage-only] [--json]`;

/** `check` only looks (nothing downloaded, nothing left pending); `update` runs it through. */
export async function run(argv: string[], mode: 'check' | 'update'): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: argv,
      options: {
        manifest: { type: 'string', multiple: true },
        'trusted-key': { type: 'string', multiple: true },
        threshold: { type: 'string' },
        'allow-unsigned': { type: 'boolean' },
        'clock-skew': { type: 'string' },
        dir: { type: 'string' },
        'app-version': { type: 'string' },
        channel: { type: 'string' },
        runtime: { type: 'string', multiple: true },
        memory: { type: 'string' },
        accelerator: { type: 'string', multiple: true },
        proxy: { type: 'string' },
        'stage-only': { type: 'boolean' },
        'max-rate': { type: 'string' },
        json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  // --stage-only: download, verify and stage; `apply` (or the next update) switches to it.
  const stageOnly = mode === 'update' && values['stage-only'] === true;
  let updater: ReturnType<typeof createModelUpdater> | undefined;
  try {
    const manifests = values.manifest ?? [];
    required(manifests[0], '--manifest');
    const trust = await trustFlags(values);
    // Stderr, so that `--json` stdout stays one object; the object carries the warning too.
    const warnings = trust.allowUnsigned ? [UNSIGNED_WARNING] : [];
    process.stderr.write(warnings.map((warning) => `warning: ${warning}\n`).join(''));
    updater = createModelUpdater({
      manifestUrl: manifests.length === 1 ? manifests[0]! : manifests,
      dir: required(values.dir, '--dir'),
      ...trust,
      ...(values['app-version'] ? { appVersion: values['app-version'] } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
      ...capabilityFlags(values),
      // Without --proxy: HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
      ...(values.proxy !== undefined ? { proxy: values.proxy } : {}),
      // --max-rate: one cap for all the download's connections (binary units, as curl's --limit-rate).
      ...(values['max-rate'] !== undefined ? { download: { maxBytesPerSecond: parseRate(values['max-rate']) } } : {}),
      // The same policy for both commands: a `check` leaves no configuration change (and nothing pending) for `update`.
      policy: { approval: 'auto', checkOnStart: false, schedule: false },
      // Staging again never switches to what an earlier run staged: `apply` does.
      ...(stageOnly ? { activation: 'next-start' as const, applyStagedOnStart: false } : {}),
    });
    updater.on('progress', (p) => output.progress(p));
    await updater.start();
    const result = await updater.check('manual', { look: mode === 'check' });
    const snapshot = updater.getSnapshot();
    const unchecked = values['app-version'] ? null : uncheckedRequirements(snapshot.context.manifest?.body, values.channel ?? 'stable');
    if (unchecked) {
      warnings.push(unchecked);
      process.stderr.write(`warning: ${unchecked}\n`);
    }
    const active = updater.active;
    const activeJson = active ? { version: active.version, path: active.path, files: active.files } : null;
    const staged = snapshot.context.staged ? { version: snapshot.context.staged.version } : null;
    const skipped = result.skipped ?? [];
    const base = { sessionId: result.sessionId, outcome: result.outcome, active: activeJson, skipped, ...(stageOnly ? { staged } : {}), ...(warnings.length ? { warnings } : {}) };
    const skippedLines = skipped.map((entry) => `skipped ${entry.version}: ${entry.reason}`);
    if (result.error) return output.failure(result.error, base);
    if (mode === 'check') {
      const candidate = snapshot.context.candidate;
      // The bytes the update will fetch (held content and chunks are copied): the check's estimate.
      const estimate = snapshot.context.estimate?.version === candidate?.version ? snapshot.context.estimate!.fetchBytes : null;
      const offered = candidate
        ? { version: candidate.version, channel: candidate.channel, notes: candidate.notes ?? null, size: totalSize(candidate), fetchBytes: estimate ?? totalSize(candidate), metadata: candidate.metadata ?? null }
        : null;
      output.result({ ok: true, ...base, updateAvailable: offered !== null, candidate: offered }, [
        offered
          ? `update available: ${offered.version} (${offered.size} bytes, ${offered.fetchBytes} to fetch), active: ${active?.version ?? 'none'}`
          : `up to date: ${active?.version ?? 'no version on offer'}`,
        ...(offered?.metadata ? [`metadata: ${JSON.stringify(offered.metadata)}`] : []),
        ...skippedLines,
      ]);
      return 0;
    }
    output.result({ ok: true, ...base }, [describe(result, active?.version ?? null), ...skippedLines]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater?.stop();
  }
}

/** The host's capabilities from `--runtime name=version`, `--memory 8g`, `--accelerator kind`. */
function capabilityFlags(values: { runtime?: string[]; memory?: string; accelerator?: string[] }): { capabilities?: HostCapabilities } {
  if (!values.runtime && values.memory === undefined && !values.accelerator) return {};
  const capabilities: HostCapabilities = {};
  if (values.runtime) {
    capabilities.runtime = {};
    for (const pair of values.runtime) {
      const match = /^([^=]+)=(.+)$/.exec(pair);
      if (!match) throw new UpdateError('INVALID_ARGUMENT', `--runtime takes <name>=<version>, like onnxruntime=1.18.0; got "${pair}".`);
      capabilities.runtime[match[1]!] = match[2]!;
    }
  }
  if (values.memory !== undefined) capabilities.memoryBytes = parseBytes(values.memory, '--memory');
  if (values.accelerator) capabilities.accelerators = values.accelerator;
  return { capabilities };
}

/** `8g`, `512m`, `1024k` (binary units) or a plain number of bytes. */
function parseBytes(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(match?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = match ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new UpdateError('INVALID_ARGUMENT', `${flag} takes bytes or a size like 8g, 512m; got "${text}".`);
  return bytes;
}

/**
 * `--max-rate`: bytes per second, or a rate like 5m (5 MiB/s) or 500k; more than 0.
 * @example
 * parseRate('5m') // 5242880
 */
export function parseRate(text: string): number {
  let bytes = NaN;
  try {
    bytes = parseBytes(text.replace(/\/s$/i, ''), '--max-rate');
  } catch {
    // said below, with what a rate looks like
  }
  if (!(bytes > 0)) throw new UpdateError('INVALID_ARGUMENT', `--max-rate takes bytes per second or a rate like 5m (5 MiB/s) or 500k, more than 0; got "${text}".`);
  return bytes;
}

/** The trust options from `--trusted-key`, `--threshold`, `--allow-unsigned`, `--clock-skew`. */
async function trustFlags(values: { 'trusted-key'?: string[]; threshold?: string; 'allow-unsigned'?: boolean; 'clock-skew'?: string }) {
  const files = values['trusted-key'] ?? [];
  const number = (flag: string, text: string | undefined) => {
    const value = Number(text);
    if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new UpdateError('INVALID_ARGUMENT', `${flag} must be a whole number, got "${text}".`);
    return value;
  };
  // Unsigned is a choice the user makes by name (and is reminded of on every run: stderr, the --json
  // object and the log), never what happens for want of a flag.
  if (files.length === 0 && !values['allow-unsigned']) {
    throw new UpdateError(
      'INVALID_ARGUMENT',
      'No --trusted-key given: pass --trusted-key <file.pub> (the public key from `model-updater keygen` whose private key `publish --key` signs with), or --allow-unsigned to accept unsigned manifests (anyone who can change what the server sends can then install models).',
    );
  }
  return {
    ...(files.length ? { trustedKeys: await Promise.all(files.map(readPublicKeyFile)) } : {}),
    ...(values.threshold !== undefined ? { threshold: number('--threshold', values.threshold) } : {}),
    ...(values['allow-unsigned'] ? { allowUnsigned: true } : {}),
    ...(values['clock-skew'] !== undefined ? { clockSkewMs: number('--clock-skew', values['clock-skew']) * 1000 } : {}),
  };
}

/**
 * Without --app-version the versions' `requires.app` ranges are not checked: say which versions have one,
 * so nobody installs a model their app cannot run without being told.
 */
function uncheckedRequirements(manifest: Manifest | undefined, channel: string): string | null {
  const ranged = (manifest?.versions ?? []).filter((offered) => channelTakes(channel, offered.channel) && offered.requires?.app !== undefined);
  if (ranged.length === 0) return null;
  const list = ranged.map((offered) => `${offered.version} (${offered.requires!.app})`).join(', ');
  return `no --app-version given: the app requirements (requires.app) of ${list} were not checked, so a model this app cannot run may be offered or installed. Pass --app-version <your app's version>.`;
}

function describe(result: UpdateResult, active: string | null): string {
  if (result.outcome === 'activated') return `updated: ${active} is active`;
  if (result.outcome === 'staged') return `staged: ${result.version}; ${active ?? 'no version'} stays active until \`model-updater apply\` or the next start`;
  return active ? `up to date: ${active} is active` : 'no version on offer for this app';
}
