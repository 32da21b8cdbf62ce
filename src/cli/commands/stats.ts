import { parseArgs } from 'node:util';
import { readAllRecords } from '../../node/logSegments.js';
import { logStats } from '../../core/log/stats.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'stats --dir <dir> [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' } } }));
  const output = new CliOutput(values.json ?? false);
  try {
    const stats = logStats(readAllRecords(required(values.dir, '--dir')));
    const rate = stats.successRate === null ? 'n/a' : `${(stats.successRate * 100).toFixed(1)} %`;
    const throughput = stats.downloads.map((d) => d.bytesPerSecond).sort((a, b) => a - b);
    const median = throughput.length ? `${(throughput[Math.floor(throughput.length / 2)]! / 1e6).toFixed(1)} MB/s` : 'n/a';
    output.result({ ok: true, ...stats }, [
      `sessions: ${stats.sessions}  ${Object.entries(stats.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `success rate: ${rate}`,
      `failures by code: ${Object.entries(stats.failuresByCode).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      `downloads: ${stats.downloads.length}, median throughput ${median}${fetchedLine(stats.downloads)}`,
      `time in state (s): ${Object.entries(stats.timeInState).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', ')}`,
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}

/** ", fetched X of Y bytes": what the downloads that recorded it fetched, against their size. */
function fetchedLine(downloads: Array<{ bytes: number; fetchedBytes?: number }>): string {
  const recorded = downloads.filter((download) => download.fetchedBytes !== undefined);
  if (recorded.length === 0) return '';
  const fetched = recorded.reduce((sum, download) => sum + download.fetchedBytes!, 0);
  const size = recorded.reduce((sum, download) => sum + download.bytes, 0);
  return `, fetched ${fetched} of ${size} bytes`;
}
