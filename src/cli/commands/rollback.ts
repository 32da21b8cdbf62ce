import { parseArgs } from 'node:util';
import { createModelUpdater } from '../../node/createModelUpdater.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'rollback --dir <dir> [--to <version>] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({ args: argv, options: { dir: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } } }),
  );
  const output = new CliOutput(values.json ?? false);
  let updater: ReturnType<typeof createModelUpdater> | undefined;
  try {
    updater = createModelUpdater({ dir: required(values.dir, '--dir'), policy: { checkOnStart: false, schedule: false } });
    await updater.start();
    const from = updater.active?.version ?? null;
    const result = await updater.rollback(values.to);
    const active = updater.active;
    const base = { sessionId: result.sessionId, outcome: result.outcome, from, active: active && { version: active.version, path: active.path, files: active.files } };
    if (result.outcome !== 'rolled-back') return output.failure(result.error, base);
    output.result({ ok: true, ...base }, [`rolled back: ${from} → ${active?.version}`]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater?.stop();
  }
}
