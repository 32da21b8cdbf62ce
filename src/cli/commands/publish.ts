import { publish } from '../../manifest/publish.js';
import { parseArgs } from 'node:util';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage =
  'publish --out <folder> --version <v> [--channel c] [--requires-app <range>] [--notes <text>] [--model-id <id>] [--json] <files or folders...>';

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
      json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const entry = await publish({
      out: required(values.out, '--out'),
      version: required(values.version, '--version'),
      inputs: positionals,
      ...(values.channel ? { channel: values.channel } : {}),
      ...(values['requires-app'] ? { requiresApp: values['requires-app'] } : {}),
      ...(values.notes ? { notes: values.notes } : {}),
      ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
    });
    const bytes = entry.files.reduce((sum, file) => sum + file.size, 0);
    output.result({ ok: true, version: entry }, [
      `published ${entry.version} (${entry.channel}) to ${values.out}: ${entry.files.length} file(s), ${bytes} bytes`,
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}
