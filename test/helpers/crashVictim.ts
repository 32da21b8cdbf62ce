/**
 * The process the kill test kills. It runs one scenario on `dir` and counts its kill points as it goes:
 *   - `after <record>`: each record the journal makes durable (the step it starts is under way);
 *   - `<fs call> in <store method> (after <record>)`: each mkdir / rename / link / unlink / rm / open /
 *     fsync / chmod / write the process makes under `dir`, named by the store method making it
 *     (`promote`, `writePointer`, `collectGarbage`, ...), by the staging area's (`staging.open`,
 *     `staging.writeRecord`, ...) or `outside the store` (lock, install id, log),
 *     and by the last record, which says which step runs (the switch, a restore, gc, ...).
 * With CRASH_POINT and CRASH_OCCURRENCE set it SIGKILLs itself at that occurrence of that point, before
 * the call runs (or just after the record is durable). With CRASH_COUNT=1 it prints the counts as JSON.
 *
 * Scenarios (argv[3]):
 *   update    update 1.0.0 -> 1.1.0, roll back by hand to 1.0.0, then gc()
 *   unhealthy update to 1.1.0, whose health check fails: the update restores 1.0.0 by itself
 *   rotate    the update scenario with a log that rotates every few records and keeps one archived
 *             segment: only the log's own points count here (`<fs call> in log.rotate`, `... in
 *             log.applyRetention`, `after log.checkpoint`, `after log.retention`)
 * The log's group-commit fsyncs (`log.startSync`, `log.retire`) are no kill points: a killed process
 * loses nothing the kernel was handed, synced or not.
 */
import { createModelUpdater } from '../../src/node/createModelUpdater.js';
import { FileEventLog } from '../../src/node/fileEventLog.js';
import { FileStagingArea } from '../../src/node/fileStagingArea.js';
import { FsModelStore } from '../../src/node/fsModelStore.js';
import { watchFs } from './fsOps.js';

const [manifestUrl, dir, scenario = 'update'] = process.argv.slice(2) as [string, string, string?];
const target = process.env.CRASH_POINT ?? null;
const occurrence = Number(process.env.CRASH_OCCURRENCE ?? 0);
const counts: Record<string, number> = {};

function reach(point: string) {
  if (scenario === 'rotate' && !point.includes(' in log.') && !point.startsWith('after log.')) return;
  const n = (counts[point] = (counts[point] ?? 0) + 1);
  if (point === target && n === occurrence) process.kill(process.pid, 'SIGKILL');
}

let inStore: string | null = null;
let lastRecord = 'nothing';
/** Names every method of a class so its file-system calls can say which method made them. */
function nameCallsOf(prototype: object, prefix: string): void {
  const methods = prototype as Record<string, (...args: unknown[]) => unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const real = methods[name];
    if (name === 'constructor' || typeof real !== 'function') continue;
    methods[name] = function (this: unknown, ...args: unknown[]) {
      const outer = inStore;
      inStore = `${prefix}${name}`;
      const result = real.apply(this, args);
      if (result instanceof Promise) return result.finally(() => (inStore = outer));
      inStore = outer;
      return result;
    };
  }
}
nameCallsOf(FsModelStore.prototype, '');
// The download's staged bytes and resume records (node/fileStagingArea.ts).
nameCallsOf(FileStagingArea.prototype, 'staging.');
// The log's rotation and retention (node/fileEventLog.ts).
nameCallsOf(FileEventLog.prototype, 'log.');
const append = FileEventLog.prototype.append;
FileEventLog.prototype.append = function (this: FileEventLog, ...args: Parameters<FileEventLog['append']>) {
  const record = append.apply(this, args);
  // Kill points are named after the domain event just journaled (`after version.staged`).
  lastRecord = args[0];
  reach(`after ${lastRecord}`);
  return record;
};
await watchFs((op) => {
  if (!op.path.startsWith(dir) && !op.to?.startsWith(dir)) return;
  if (inStore === 'log.startSync' || inStore === 'log.retire') return;
  // The last record says which step is running: `rename in writePointer (after health.passed)` is
  // the switch, `(after rollback.requested)` the rollback.
  reach(`${op.kind} ${inStore ? `in ${inStore}` : 'outside the store'} (after ${lastRecord})`);
});

const updater = createModelUpdater({
  manifestUrl,
  dir,
  policy: { checkOnStart: false },
  allowUnsigned: true,
  ...(scenario === 'unhealthy' ? { loader: { healthCheck: (model: { version: string }) => model.version !== '1.1.0' } } : {}),
  ...(scenario === 'rotate' ? { log: { segmentRecords: 6, retainSegments: 1 } } : {}),
});
process.stdout.write('ready\n');
await updater.start();
const results: unknown[] = [await updater.check()];
if (scenario === 'update' || scenario === 'rotate') {
  results.push(await updater.rollback());
  results.push(await updater.gc());
}
updater.stop();
process.stdout.write(`${JSON.stringify({ results, counts })}\n`);
