import { parseArgs } from 'node:util';
import { createModelUpdater } from '../../node/createModelUpdater.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'release --dir <dir> --version <v> [--json]   (a version a rollback quarantined may be offered again)';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({ args: argv, options: { dir: { type: 'string' }, version: { type: 'string' }, json: { type: 'boolean' } } }),
  );
  const output = new CliOutput(values.json ?? false);
  let updater: ReturnType<typeof createModelUpdater> | undefined;
  try {
    const version = required(values.version, '--version');
    updater = createModelUpdater({ dir: required(values.dir, '--dir'), policy: { checkOnStart: false, schedule: false } });
    await updater.start();
    updater.release(version);
    const quarantine = updater.getSnapshot().context.quarantine;
    output.result({ ok: true, released: version, quarantine }, [`released ${version}: checks may offer it again`]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater?.stop();
  }
}
