import { join } from 'node:path';
import { statePath } from '../../core/statePath.js';
import { readLogFile } from '../../node/fileEventLog.js';
import { replay } from '../../core/log/replay.js';
import { FsModelStore, LOG_FILE } from '../../node/fsModelStore.js';
import type { InstalledVersion } from '../../../machines/types.js';
import { parseArgs } from 'node:util';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'status --dir <dir> [--json]';

/** A version as status shows it; the bundled model (recorded in the pointer when adopted) is marked `bundled: true`. */
export function describeVersion(store: FsModelStore, installed: InstalledVersion) {
  if (installed.bundledPath !== undefined) return { version: installed.version, path: installed.bundledPath, files: installed.files, bundled: true };
  return { version: installed.version, path: store.versionPath(installed.version), files: installed.files };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' } } }));
  const output = new CliOutput(values.json ?? false);
  try {
    const dir = required(values.dir, '--dir');
    const store = new FsModelStore(dir);
    const pointer = await store.readPointer();
    const snapshot = replay(readLogFile(join(dir, LOG_FILE)).records);
    const state = snapshot ? statePath(snapshot) : 'idle';
    const active = pointer ? describeVersion(store, pointer.active) : null;
    const retained = (pointer?.retained ?? []).map((kept) => describeVersion(store, kept));
    const last = snapshot?.context.lastResult;
    // A version `update --stage-only` (activation 'next-start') staged, switched to by `apply` or the next start.
    const staged = snapshot?.context.staged ? { version: snapshot.context.staged.version } : null;
    output.result({ active, retained, staged, state, lastResult: last ?? null }, [
      `active:   ${active ? `${active.version}${active.bundled ? ' (bundled)' : ''}  ${active.path}` : 'none'}`,
      `retained: ${retained.map((kept) => `${kept.version}${kept.bundled ? ' (bundled)' : ''}`).join(', ') || 'none'}`,
      `staged:   ${staged?.version ?? 'none'}`,
      `state:    ${state}`,
      ...(last ? [`last:     ${last.outcome}${last.version ? ` ${last.version}` : ''}${last.error ? ` (${last.error.code})` : ''}`] : []),
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}
