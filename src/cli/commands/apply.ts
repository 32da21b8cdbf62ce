import { parseArgs } from 'node:util';
import { createModelUpdater } from '../../node/createModelUpdater.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'apply --dir <dir> [--json]';

/** Switches to the version `update --stage-only` staged (migrate, load, health check, switch, or rollback). */
export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' } } }));
  const output = new CliOutput(values.json ?? false);
  let updater: ReturnType<typeof createModelUpdater> | undefined;
  try {
    updater = createModelUpdater({ dir: required(values.dir, '--dir'), policy: { checkOnStart: false, schedule: false } });
    await updater.start();
    const result = await updater.applyStaged();
    const active = updater.active;
    const base = { sessionId: result.sessionId, outcome: result.outcome, active: active && { version: active.version, path: active.path, files: active.files } };
    if (result.outcome !== 'activated') return output.failure(result.error, base);
    output.result({ ok: true, ...base }, [`applied: ${active?.version} is active`]);
    return 0;
  } catch (error) {
    return output.failure(error);
  } finally {
    updater?.stop();
  }
}
