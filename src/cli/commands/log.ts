import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readLogFile } from '../../log/fileEventLog.js';
import { verifyLog, type LogRecord } from '../../log/record.js';
import { LOG_FILE } from '../../node/fsModelStore.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'log --dir <dir> [--verify] [--json]';

/** A short human reading of one record. */
export function summarize(record: LogRecord): string {
  const data = record.data as Record<string, any>;
  if (data.error) return `${data.error.code}: ${data.error.message}`;
  switch (record.type) {
    case 'CHECK':
      return `check (${data.trigger})`;
    case 'ROLLBACK':
      return `rollback${data.to ? ` to ${data.to}` : ''}`;
    case 'PROGRESS':
      return `${data.progress.version}: ${data.progress.bytes}/${data.progress.total} bytes, ${data.progress.bytesPerSecond} B/s`;
    case 'xstate.done.actor.fetchManifest':
      return data.output.notModified ? 'manifest unchanged (304)' : `manifest: ${data.output.manifest.versions.length} version(s)`;
    case 'xstate.done.actor.switchActive':
    case 'xstate.done.actor.restoreVersion':
      return `active: ${data.output.active?.version ?? 'none'}`;
    case 'xstate.init':
      return `log started (app ${data.input.config.appVersion ?? 'any'}, channel ${data.input.config.channel})`;
    default:
      return '';
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({ args: argv, options: { dir: { type: 'string' }, verify: { type: 'boolean' }, json: { type: 'boolean' } } }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const path = join(required(values.dir, '--dir'), LOG_FILE);
    const { records, tornTailBytes } = readLogFile(path);
    if (values.verify) {
      const result = verifyLog(records);
      if (!result.ok) {
        output.result({ ok: false, error: { code: 'LOG_CORRUPT', message: `record ${result.seq} ${result.reason}` }, seq: result.seq }, [
          `log BROKEN at record ${result.seq}: ${result.reason}`,
        ]);
        return 1;
      }
      output.result({ ok: true, records: result.count, head: result.head, tornTailBytes }, [
        `log OK: ${result.count} records, chain head ${result.head.slice(0, 16)}${tornTailBytes ? ` (a torn last record of ${tornTailBytes} bytes will be cut on the next start)` : ''}`,
      ]);
      return 0;
    }
    if (values.json) {
      for (const record of records) process.stdout.write(`${JSON.stringify(record)}\n`);
      return 0;
    }
    for (const record of records) {
      const session = record.session ? record.session.slice(0, 8) : '-'.repeat(8);
      process.stdout.write(`${String(record.seq).padStart(5)}  ${record.ts}  ${session}  ${record.type.replace('xstate.', '')}  ${summarize(record)}\n`);
    }
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}
