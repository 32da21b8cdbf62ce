import { publish } from '../../publish/publish.js';
import { parseArgs } from 'node:util';
import { readPrivateKeyFile, readPublicKeyFile } from '../../publish/keyFiles.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';
import { UpdateError } from '../../core/errors.js';

export const usage =
  'publish --out <folder> --version <v> [--channel c] [--requires-app <range>] [--notes <text>] [--model-id <id>] [--key <private key file>]... [--expires <ISO date | 30d>] [--rotate-key <public key file>... --rotate-threshold n] [--json] <files or folders...>';

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
      'model-id': { type: 'string' },
      key: { type: 'string', multiple: true },
      expires: { type: 'string' },
      'rotate-key': { type: 'string', multiple: true },
      'rotate-threshold': { type: 'string' },
      json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const keys = await Promise.all((values.key ?? []).map(readPrivateKeyFile));
    const rotateKeys = await Promise.all((values['rotate-key'] ?? []).map(readPublicKeyFile));
    const rotateThreshold = values['rotate-threshold'] === undefined ? 1 : Number(values['rotate-threshold']);
    if (!Number.isInteger(rotateThreshold) || rotateThreshold < 1) throw new UpdateError('INVALID_ARGUMENT', `--rotate-threshold must be a whole number >= 1, got "${values['rotate-threshold']}".`);
    if (values.expires !== undefined && keys.length === 0) throw new UpdateError('INVALID_ARGUMENT', '--expires needs --key: only a signed manifest can be trusted to expire.');
    if (rotateKeys.length > 0 && keys.length === 0) throw new UpdateError('INVALID_ARGUMENT', '--rotate-key needs --key: a rotation must be signed by the current keys (and the new ones).');
    // Without --version and files: re-sign only (new serial and expiry), e.g. before the old one expires.
    const resign = values.version === undefined && positionals.length === 0 && keys.length > 0;
    const entry = await publish({
      out: required(values.out, '--out'),
      ...(resign ? {} : { version: required(values.version, '--version') }),
      inputs: positionals,
      ...(keys.length ? { keys } : {}),
      ...(values.expires !== undefined ? { expires: values.expires } : {}),
      ...(rotateKeys.length ? { rotateTo: { keys: rotateKeys, threshold: rotateThreshold } } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
      ...(values['requires-app'] ? { requiresApp: values['requires-app'] } : {}),
      ...(values.notes ? { notes: values.notes } : {}),
      ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
    });
    const signing = keys.length ? `, signed by ${keys.length} key(s)` : ', unsigned (sign with --key so clients can verify it)';
    if (entry === null) {
      output.result({ ok: true, version: null, signed: true }, [`re-signed ${values.out}/manifest.json${signing}`]);
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
