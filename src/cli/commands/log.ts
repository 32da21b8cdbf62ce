import { parseArgs } from 'node:util';
import { formatRecord } from '../../core/log/describe.js';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { htmlLog } from '../../inspect/htmlLog.js';
import { readLogFile } from '../../node/fileEventLog.js';
import { LIVE_SEGMENT, readAllRecords, verifyLogFolder } from '../../node/logSegments.js';
import { quarantineLog } from '../../node/quarantineLog.js';
import { readLogAnchors } from '../../node/logAnchors.js';
import { missingTail } from '../../core/log/logAnchor.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';
import { inspectLog, normalizeInspectFlag } from '../inspectLog.js';
import { UpdateError } from '../../core/errors.js';
import type { LogRecord } from '../../core/log/record.js';

export const usage = 'log --dir <dir> [--verify] [--json] [--html <file>] [--inspect [ws://host:port]] [--port <n>] [--no-open] [--quarantine [--force]]';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: normalizeInspectFlag(argv),
      options: { dir: { type: 'string' }, html: { type: 'string' }, verify: { type: 'boolean' }, json: { type: 'boolean' }, inspect: { type: 'string' }, port: { type: 'string' }, 'no-open': { type: 'boolean' }, quarantine: { type: 'boolean' }, force: { type: 'boolean' } },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const dir = required(values.dir, '--dir');
    if (values.quarantine) {
      const report = await quarantineLog(dir, { force: values.force ?? false });
      output.result({ ok: true, ...report }, [`set aside ${report.movedTo} (${report.reason}); a new log starts on the next run, the models are kept`]);
      return 0;
    }
    if (values.html !== undefined) {
      const file = resolve(values.html);
      const page = htmlLog(readAllRecords(dir), { title: resolve(dir) });
      if (page.records === 0) throw new UpdateError('INVALID_ARGUMENT', `There is no event log in ${dir}: give --dir the model folder the updater writes to.`);
      await writeFile(file, page.html);
      output.result({ ok: true, file, records: page.records, sessions: page.sessions, bytes: Buffer.byteLength(page.html) }, [
        `wrote ${file}: ${page.records} records in ${page.sessions} session${page.sessions === 1 ? '' : 's'}; open it in any browser, it needs no network`,
      ]);
      return 0;
    }
    // Every segment, archived ones first, streamed: the whole history is never in memory at once.
    if (values.inspect !== undefined) {
      return await inspectLog(readAllRecords(dir), { url: values.inspect, port: inspectorPort(values.port), open: !values['no-open'] }, output);
    }
    if (values.verify) {
      const { verification: result, tornTailBytes, segments } = verifyLogFolder(dir);
      if (!result.ok) {
        output.result({ ok: false, error: { code: 'LOG_CORRUPT', message: `record ${result.seq} ${result.reason}` }, seq: result.seq }, [
          `log BROKEN at record ${result.seq}: ${result.reason}`,
        ]);
        return 1;
      }
      // A log cut back at a record boundary still chains: it must also reach the ends anchored outside it.
      const cut = missingTail(readLogFile(join(dir, LIVE_SEGMENT)).records, await readLogAnchors(dir));
      if (cut !== null) {
        const message = `The event log ${cut}. Run \`model-updater log --quarantine --dir ${dir}\` to set it aside and start a new log; the models, keys and serial are kept.`;
        output.result({ ok: false, error: { code: 'LOG_CORRUPT', message } }, [`log BROKEN at its end: ${message}`]);
        return 1;
      }
      output.result({ ok: true, records: result.count, segments, head: result.head, tornTailBytes }, [
        `log OK: ${result.count} records in ${segments} segment${segments === 1 ? '' : 's'}, chain head ${result.head.slice(0, 16)}${tornTailBytes ? ` (a torn last record of ${tornTailBytes} bytes will be cut on the next start)` : ''}`,
      ]);
      return 0;
    }
    const format = values.json ? (record: LogRecord) => JSON.stringify(record) : formatRecord;
    for (const record of readAllRecords(dir)) await write(`${format(record)}\n`);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}

/** Writes to stdout, waiting when the pipe is full (a long log piped into `less` or `head`). */
function write(text: string): Promise<void> | void {
  if (!process.stdout.write(text)) return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

function inspectorPort(value: string | undefined): number {
  if (value === undefined) return 8080;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65_535) {
    throw new UpdateError('INVALID_ARGUMENT', `--port ${value} is not a TCP port; give a number from 1 to 65535.`);
  }
  return port;
}
