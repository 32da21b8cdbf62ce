import { parseArgs } from 'node:util';
import { createModelUpdater, type UpdateResult } from '../../createModelUpdater.js';
import { totalSize } from '../../../machines/selectCandidate.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const checkUsage = 'check --manifest <url> --dir <dir> [--app-version v] [--channel c] [--json]';
export const updateUsage = 'update --manifest <url> --dir <dir> [--app-version v] [--channel c] [--json]';

/** `check` looks without downloading (it leaves the update awaiting approval); `update` runs it through. */
export async function run(argv: string[], mode: 'check' | 'update'): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: argv,
      options: {
        manifest: { type: 'string' },
        dir: { type: 'string' },
        'app-version': { type: 'string' },
        channel: { type: 'string' },
        json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  let updater: ReturnType<typeof createModelUpdater> | undefined;
  try {
    updater = createModelUpdater({
      manifestUrl: required(values.manifest, '--manifest'),
      dir: required(values.dir, '--dir'),
      ...(values['app-version'] ? { appVersion: values['app-version'] } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
      policy: { approval: mode === 'check' ? 'ask' : 'auto', checkOnStart: false },
    });
    updater.on('progress', (p) => output.progress(p));
    await updater.start();
    const result = await updater.check('manual');
    const snapshot = updater.getSnapshot();
    const active = updater.active;
    const activeJson = active ? { version: active.version, path: active.path, files: active.files } : null;
    const base = { sessionId: result.sessionId, outcome: result.outcome, active: activeJson };
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

function describe(result: UpdateResult, active: string | null): string {
  if (result.outcome === 'activated') return `updated: ${active} is active`;
  return active ? `up to date: ${active} is active` : 'no version on offer for this app';
}
