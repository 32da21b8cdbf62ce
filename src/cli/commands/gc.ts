import { parseArgs } from 'node:util';
import { createModelUpdater } from '../../node/createModelUpdater.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'gc --dir <dir> [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' } } }));
  const output = new CliOutput(values.json ?? false);
  const updater = createModelUpdater({ dir: required(values.dir, '--dir'), policy: { checkOnStart: false, schedule: false }, allowUnsigned: true });
  try {
    await updater.start();
    const report = await updater.gc();
    output.result({ ok: true, ...report }, [
      `removed versions: ${report.removedVersions.join(', ') || 'none'}; staging: ${report.removedStaging.join(', ') || 'none'}; freed ${report.freedBytes} bytes`,
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater.stop();
  }
}
