import { parseArgs } from 'node:util';
import { UpdateError } from '../../core/errors.js';
import { readPublicKeyFile } from '../../publish/keyFiles.js';
import { verifyService, type FileReport } from '../../publish/verifyService.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'verify-service --manifest <url> [--trusted-key <public key file>]... [--threshold n] [--full] [--json]   (checks a deployed service as clients see it; exit 1 on any problem)';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: argv,
      options: {
        manifest: { type: 'string' },
        'trusted-key': { type: 'string', multiple: true },
        threshold: { type: 'string' },
        full: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    }),
  );
  const output = new CliOutput(values.json ?? false);
  try {
    const manifestUrl = required(values.manifest, '--manifest');
    const trustedKeys = await Promise.all((values['trusted-key'] ?? []).map(readPublicKeyFile));
    const threshold = values.threshold === undefined ? 1 : Number(values.threshold);
    if (!Number.isInteger(threshold) || threshold < 1) throw new UpdateError('INVALID_ARGUMENT', `--threshold must be a whole number >= 1, got "${values.threshold}".`);
    const report = await verifyService({ manifestUrl, trustedKeys, threshold, full: values.full ?? false });
    const m = report.manifest;
    const c = report.chunkIndexes;
    const lines = [
      `manifest ${m.url}: ${m.ok ? 'ok' : 'FAILED'}${m.ok ? `, ${m.signed ? 'signature checked' : 'signature not checked'}, serial ${m.serial ?? '-'}, expires ${m.expires ?? '-'}${m.expiresInDays === null ? '' : ` (${m.expiresInDays} days)`}, ETag ${m.etag ?? '-'}` : ''}`,
      ...m.problems.map((problem) => `  problem: ${problem}`),
      ...m.warnings.map((warning) => `  warning: ${warning}`),
      ...(report.files.length ? table(report.files) : []),
      ...(c.url === null ? [] : [`chunk indexes ${c.url}: ${c.ok ? 'ok' : 'FAILED'}, ${c.files} file(s) listed`]),
      ...c.problems.map((problem) => `  problem: ${problem}`),
      ...c.warnings.map((warning) => `  warning: ${warning}`),
      report.ok ? `ok: the service answers as clients need${m.warnings.length || c.warnings.length ? ' (see the warnings)' : ''}` : 'FAILED: clients will not update from this service as it is',
    ];
    if (output.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else for (const line of lines) process.stdout.write(`${line}\n`);
    return report.ok ? 0 : 1;
  } catch (error) {
    return output.failure(error);
  }
}

function table(files: FileReport[]): string[] {
  const rows = [
    ['version', 'path', 'size', 'status', 'range', 'etag', 'sha256', 'result'],
    ...files.map((file) => [
      file.version,
      file.path,
      String(file.size),
      String(file.status),
      file.range ? 'yes' : 'no',
      file.etag === null ? '-' : file.etag.startsWith('W/') ? 'weak' : 'strong',
      file.sha256 === undefined ? '-' : file.problems.some((problem) => problem.startsWith('SHA-256')) ? 'WRONG' : 'ok',
      file.problems.length ? `FAILED: ${file.problems.join('; ')}` : 'ok',
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (column === 7 ? 0 : row[column]!.length))));
  return rows.map((row) => `  ${row.map((cell, column) => (column === 7 ? cell : cell.padEnd(widths[column]!))).join('  ')}`);
}
