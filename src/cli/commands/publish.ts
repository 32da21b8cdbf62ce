import { readFile } from 'node:fs/promises';
import { publish } from '../../publish/publish.js';
import { parseArgs } from 'node:util';
import { readPrivateKeyFile, readPublicKeyFile } from '../../publish/keyFiles.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';
import { UpdateError } from '../../core/errors.js';
import { parseStrictJson } from '../../core/trust/strictJson.js';
import type { VersionRequirements } from '../../../machines/types.js';

export const usage =
  "publish --out <folder> --version <v> [--channel c] [--requires-app <range>] [--requires <file.json>] [--notes <text>] [--metadata <file.json>] [--model-id <id>] [--key <private key file>]... [--expires <ISO date | 30d>] [--rotate-key <public key file>... --rotate-threshold n [--rotate-from <public key file>... --rotate-from-threshold n]] [--rollout <fraction 0..1>] [--no-chunk-index] [--json] <files or folders...> | publish --out <folder> --version <v> --rollout <fraction> [--key ...] (no files: changes that published version's rollout) | publish --out <folder> --pull <version> [--key ...] (withdraws it)";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
      out: { type: 'string' },
      version: { type: 'string' },
      channel: { type: 'string' },
      'requires-app': { type: 'string' },
      notes: { type: 'string' },
      requires: { type: 'string' },
      metadata: { type: 'string' },
      'model-id': { type: 'string' },
      key: { type: 'string', multiple: true },
      expires: { type: 'string' },
      'rotate-key': { type: 'string', multiple: true },
      'rotate-threshold': { type: 'string' },
      'rotate-from': { type: 'string', multiple: true },
      'rotate-from-threshold': { type: 'string' },
      rollout: { type: 'string' },
      pull: { type: 'string' },
      'no-chunk-index': { type: 'boolean' },
      json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const keys = await Promise.all((values.key ?? []).map(readPrivateKeyFile));
    const rotateKeys = await Promise.all((values['rotate-key'] ?? []).map(readPublicKeyFile));
    const rotateThreshold = wholeNumber(values['rotate-threshold'], '--rotate-threshold');
    const rotateFrom = await Promise.all((values['rotate-from'] ?? []).map(readPublicKeyFile));
    const rotateFromThreshold = wholeNumber(values['rotate-from-threshold'], '--rotate-from-threshold');
    if (rotateFrom.length > 0 && rotateKeys.length === 0) throw new UpdateError('INVALID_ARGUMENT', '--rotate-from needs --rotate-key: it names the keys a rotation rotates from.');
    if (values.expires !== undefined && keys.length === 0) throw new UpdateError('INVALID_ARGUMENT', '--expires needs --key: only a signed manifest can be trusted to expire.');
    if (rotateKeys.length > 0 && keys.length === 0) throw new UpdateError('INVALID_ARGUMENT', '--rotate-key needs --key: a rotation must be signed by the current keys (and the new ones).');
    // Without --version and files: re-sign only (new serial and expiry), e.g. before the old one expires.
    const resign = values.version === undefined && positionals.length === 0 && keys.length > 0 && values.pull === undefined;
    const rollout = values.rollout === undefined ? undefined : fraction(values.rollout);
    // A published version's rollout changed, or a version pulled: only that field changes.
    const changing = positionals.length === 0 && (values.pull !== undefined || rollout !== undefined);
    const entry = await publish({
      out: required(values.out, '--out'),
      ...(resign || values.pull !== undefined ? {} : { version: required(values.version, '--version') }),
      ...(values.pull !== undefined ? { pull: values.pull } : {}),
      ...(rollout !== undefined ? { rollout } : {}),
      inputs: positionals,
      ...(keys.length ? { keys } : {}),
      ...(values.expires !== undefined ? { expires: values.expires } : {}),
      ...(rotateKeys.length ? { rotateTo: { keys: rotateKeys, threshold: rotateThreshold } } : {}),
      ...(rotateFrom.length ? { rotateFrom: { keys: rotateFrom, threshold: rotateFromThreshold } } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
      ...(values['requires-app'] ? { requiresApp: values['requires-app'] } : {}),
      ...(values.notes ? { notes: values.notes } : {}),
      ...(values.requires !== undefined ? { requires: (await readJsonObject(values.requires, '--requires')) as VersionRequirements } : {}),
      ...(values.metadata !== undefined ? { metadata: await readJsonObject(values.metadata, '--metadata') } : {}),
      ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
      ...(values['no-chunk-index'] ? { chunkIndex: false } : {}),
    });
    const signing = keys.length ? `, signed by ${keys.length} key(s)` : ', unsigned (sign with --key so clients can verify it)';
    if (entry === null) {
      output.result({ ok: true, version: null, signed: true }, [`re-signed ${values.out}/manifest.json${signing}`]);
      return 0;
    }
    if (changing) {
      const what = values.pull !== undefined ? 'pulled (never offered again; installs running it roll back)' : `rollout set to ${entry.rollout}`;
      output.result({ ok: true, version: entry, signed: keys.length > 0 }, [`${entry.version} in ${values.out}: ${what}${signing}`]);
      return 0;
    }
    const bytes = entry.files.reduce((sum, file) => sum + file.size, 0);
    output.result({ ok: true, version: entry, signed: keys.length > 0 }, [
      `published ${entry.version} (${entry.channel}) to ${values.out}: ${entry.files.length} file(s), ${bytes} bytes${signing}`,
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}

function wholeNumber(value: string | undefined, flag: string): number {
  const number = value === undefined ? 1 : Number(value);
  if (!Number.isInteger(number) || number < 1) throw new UpdateError('INVALID_ARGUMENT', `${flag} must be a whole number >= 1, got "${value}".`);
  return number;
}

function fraction(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0 || number > 1) {
    throw new UpdateError('INVALID_ARGUMENT', `--rollout must be a fraction from 0 to 1 (like 0.25), got "${value}".`);
  }
  return number;
}

/** A JSON object from a file (`--metadata`, `--requires`), read as strictly as a manifest. */
async function readJsonObject(path: string, flag: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UpdateError('INVALID_ARGUMENT', `${flag} ${path}: cannot read it (${error.code ?? error.message}). Pass a JSON file.`);
  });
  let value: unknown;
  try {
    value = parseStrictJson(text, path);
  } catch (error) {
    throw new UpdateError('INVALID_ARGUMENT', `${flag} ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UpdateError('INVALID_ARGUMENT', `${flag} ${path} must hold a JSON object ({ ... }).`);
  return value as Record<string, unknown>;
}
