import { parseArgs } from 'node:util';
import { createModelUpdater, type UpdateResult } from '../../node/createModelUpdater.js';
import { totalSize } from '../../../machines/selectCandidate.js';
import type { Manifest } from '../../../machines/types.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';
import { UpdateError } from '../../core/errors.js';
import { readPublicKeyFile } from '../../publish/keyFiles.js';

const UNSIGNED_WARNING =
  '--allow-unsigned: manifests are not checked for a signature; whoever can change what the server sends can install models here. Sign with `publish --key` and pass --trusted-key.';
const trustUsage = '(--trusted-key <public key file>... [--threshold n] | --allow-unsigned) [--clock-skew <seconds>]';
export const checkUsage = `check --manifest <url>... --dir <dir> ${trustUsage} [--app-version v] [--channel c] [--proxy <url>] [--json]`;
export const updateUsage = `update --manifest <url>... --dir <dir> ${trustUsage} [--app-version v] [--channel c] [--proxy <url>] [--stage-only] [--json]`;

/** `check` looks without downloading (it leaves the update awaiting approval); `update` runs it through. */
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
        proxy: { type: 'string' },
        'stage-only': { type: 'boolean' },
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
      // Without --proxy: HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
      ...(values.proxy !== undefined ? { proxy: values.proxy } : {}),
      policy: { approval: mode === 'check' ? 'ask' : 'auto', checkOnStart: false, schedule: false },
      // Staging again never switches to what an earlier run staged: `apply` does.
      ...(stageOnly ? { activation: 'next-start' as const, applyStagedOnStart: false } : {}),
    });
    updater.on('progress', (p) => output.progress(p));
    await updater.start();
    const result = await updater.check('manual');
    const snapshot = updater.getSnapshot();
    const unchecked = values['app-version'] ? null : uncheckedRequirements(snapshot.context.manifest?.body, values.channel ?? 'stable');
    if (unchecked) {
      warnings.push(unchecked);
      process.stderr.write(`warning: ${unchecked}\n`);
    }
    const active = updater.active;
    const activeJson = active ? { version: active.version, path: active.path, files: active.files } : null;
    const staged = snapshot.context.staged ? { version: snapshot.context.staged.version } : null;
    const base = { sessionId: result.sessionId, outcome: result.outcome, active: activeJson, ...(stageOnly ? { staged } : {}), ...(warnings.length ? { warnings } : {}) };
    if (result.error) return output.failure(result.error, base);
    if (mode === 'check') {
      const candidate = snapshot.context.candidate;
      const offered = candidate ? { version: candidate.version, channel: candidate.channel, notes: candidate.notes ?? null, size: totalSize(candidate) } : null;
      output.result({ ok: true, ...base, updateAvailable: offered !== null, candidate: offered }, [
        offered ? `update available: ${offered.version} (${offered.size} bytes), active: ${active?.version ?? 'none'}` : `up to date: ${active?.version ?? 'no version on offer'}`,
      ]);
      return 0;
    }
    output.result({ ok: true, ...base }, [describe(result, active?.version ?? null)]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater?.stop();
  }
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
  const ranged = (manifest?.versions ?? []).filter((offered) => offered.channel === channel && offered.requires?.app !== undefined);
  if (ranged.length === 0) return null;
  const list = ranged.map((offered) => `${offered.version} (${offered.requires!.app})`).join(', ');
  return `no --app-version given: the app requirements (requires.app) of ${list} were not checked, so a model this app cannot run may be offered or installed. Pass --app-version <your app's version>.`;
}

function describe(result: UpdateResult, active: string | null): string {
  if (result.outcome === 'activated') return `updated: ${active} is active`;
  if (result.outcome === 'staged') return `staged: ${result.version}; ${active ?? 'no version'} stays active until \`model-updater apply\` or the next start`;
  return active ? `up to date: ${active} is active` : 'no version on offer for this app';
}
