/**
 * `npm run bench:startup`: start-up time of an updater whose log holds many records (10,000 by default,
 * BENCH_RECORDS to change): the first start folds the whole log, later ones start from the checkpoint the
 * first one wrote. Then a history of 1,000,000 records (BENCH_HISTORY) in segments, as years of scheduled
 * checks leave it (archived segments of 10,000 records, each from a checkpoint, and a small live one):
 * start-up (target < 100 ms: only the live segment is read) and a full `log --verify` over every segment,
 * as the CLI runs it. Last line: `{"records", "fullReplayMs", "checkpointMs", "historyRecords",
 * "historySegments", "historyStartupMs", "verifyMs", "verifyCliMs"}`.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { publish } from '../src/publish/publish.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { CHECKPOINT, RECORD_VERSION, type LogRecord } from '../src/core/log/record.js';
import { checkpointData, replay } from '../src/core/log/replay.js';
import { archiveName, nodeRecordHash, verifyLogFolder } from '../src/node/logSegments.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/core/log/segmentOptions.js';
import { startTestServer } from '../test/helpers/testServer.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000);
const HISTORY = Number(process.env.BENCH_HISTORY ?? 1_000_000);
const PROJECT = fileURLToPath(new URL('..', import.meta.url));
const root = await mkdtemp(join(tmpdir(), 'model-updater-bench-startup-'));
const site = join(root, 'site');
const dir = join(root, 'models');
await mkdir(join(root, 'source'), { recursive: true });
await writeFile(join(root, 'source', 'model.bin'), randomBytes(64 * 1024));
await publish({ out: site, version: '1.0.0', inputs: [join(root, 'source', 'model.bin')] });
const server = await startTestServer({ root: site });
const options = { manifestUrl: `${server.url}manifest.json`, dir, policy: { checkOnStart: false }, allowUnsigned: true };

try {
  // A real history: an install, then one real up-to-date check to copy.
  const installer = createModelUpdater(options);
  await installer.start();
  await installer.check();
  await installer.check();
  const check = installer.log.records().slice(-2).map((record) => ({ type: record.type, data: record.data }));
  installer.stop();

  // Many more up-to-date checks, as a year of scheduled checks would leave.
  const log = FileEventLog.open(join(dir, LOG_FILE));
  while (log.records().length < RECORDS) {
    const session = crypto.randomUUID();
    for (const { type, data } of check) log.append(type, session, type === 'check.requested' ? { ...data, sessionId: session } : data);
  }
  log.close();

  const timeStart = async (more: Partial<Parameters<typeof createModelUpdater>[0]> = {}) => {
    const updater = createModelUpdater({ ...options, ...more });
    const started = performance.now();
    await updater.start();
    const ms = performance.now() - started;
    updater.stop();
    return ms;
  };
  const fullReplayMs = await timeStart();
  const later: number[] = [];
  for (let i = 0; i < 7; i++) later.push(await timeStart());
  later.sort((a, b) => a - b);
  const checkpointMs = later[Math.floor(later.length / 2)]!;
  console.log(`start-up with ${RECORDS} records: first start (full replay, writes a checkpoint) ${fullReplayMs.toFixed(1)} ms; later starts (from the checkpoint), median of 7: ${checkpointMs.toFixed(1)} ms`);

  // A long history: the same folder's log made the first of many segments, written directly with the
  // record sealing functions (as fast as a benchmark needs; the chain is the one the updater writes).
  const history = historyOptions(dir);
  const made = performance.now();
  const segments = writeHistory(dir, check, HISTORY);
  console.log(`wrote ${HISTORY} records in ${segments} segments in ${((performance.now() - made) / 1000).toFixed(1)} s`);
  const starts: number[] = [];
  for (let i = 0; i < 7; i++) starts.push(await timeStart(history));
  starts.sort((a, b) => a - b);
  const historyStartupMs = starts[Math.floor(starts.length / 2)]!;
  const verifying = performance.now();
  const { verification } = verifyLogFolder(dir);
  const verifyMs = performance.now() - verifying;
  if (!verification.ok) throw new Error(`the history does not verify: record ${verification.seq} ${verification.reason}`);
  const cliStarted = performance.now();
  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'log', '--verify', '--json', '--dir', dir], { cwd: PROJECT, encoding: 'utf8' });
  const verifyCliMs = performance.now() - cliStarted;
  const verdict = JSON.parse(cli.stdout.trim()) as { ok: boolean; records: number };
  if (!verdict.ok) throw new Error(`log --verify failed: ${cli.stdout}`);
  console.log(`start-up with ${verdict.records} records of history in ${segments} segments (median of 7): ${historyStartupMs.toFixed(1)} ms (target < 100 ms)`);
  console.log(`full verify of ${verdict.records} records: ${(verifyMs / 1000).toFixed(2)} s in process; \`model-updater log --verify\` ${(verifyCliMs / 1000).toFixed(2)} s`);
  console.log(
    JSON.stringify({
      records: RECORDS,
      fullReplayMs: Math.round(fullReplayMs * 10) / 10,
      checkpointMs: Math.round(checkpointMs * 10) / 10,
      historyRecords: verdict.records,
      historySegments: segments,
      historyStartupMs: Math.round(historyStartupMs * 10) / 10,
      verifyMs: Math.round(verifyMs),
      verifyCliMs: Math.round(verifyCliMs),
    }),
  );
} finally {
  await server.close();
  await rm(root, { recursive: true, force: true });
}

/** The history is kept whole: retention would drop most of it. */
function historyOptions(_dir: string) {
  return { log: { retainSegments: Infinity } };
}

/**
 * Makes the log in `dir` the first segment of a history of `total` records: archived segments of the
 * default size, each starting with a checkpoint of the state the checks leave, and a small live one.
 * Returns the number of segments.
 */
function writeHistory(dir: string, check: Array<{ type: string; data: Record<string, unknown> }>, total: number): number {
  const livePath = join(dir, LOG_FILE);
  const existing = FileEventLog.open(livePath);
  const start = [...existing.records()];
  existing.close();
  const state = checkpointData(replay(start)!);
  renameSync(livePath, join(dir, archiveName(start[0]!.seq)));
  let last: LogRecord = start.at(-1)!;
  let ts = Date.parse(last.ts);
  // sealRecord's hash, computed with node:crypto (the same bytes): the chain the updater writes, faster.
  const seal = (type: string, session: string | null, data: Record<string, unknown>) => {
    const fields = { v: RECORD_VERSION, seq: last.seq + 1, ts: new Date((ts += 1000)).toISOString(), session, type, data, prev: last.hash };
    return (last = { ...fields, hash: nodeRecordHash(fields) });
  };
  const perSegment = DEFAULT_SEGMENT_OPTIONS.segmentRecords;
  const liveRecords = 51;
  let segments = 1;
  while (last.seq + 1 < total) {
    const remaining = total - (last.seq + 1);
    const live = remaining <= liveRecords;
    const size = live ? remaining : Math.min(perSegment, remaining - liveRecords);
    const path = live ? livePath : join(dir, archiveName(last.seq + 1));
    const fd = openSync(path, 'w');
    let chunk = `${JSON.stringify(seal(CHECKPOINT, null, state))}\n`;
    for (let n = 1; n < size; n++) {
      const step = check[(n - 1) % check.length]!;
      const session = step.type === 'check.requested' || n === 1 ? crypto.randomUUID() : last.session;
      chunk += `${JSON.stringify(seal(step.type, session, step.type === 'check.requested' ? { ...step.data, sessionId: session } : step.data))}\n`;
      if (chunk.length > 1 << 20) {
        writeSync(fd, chunk);
        chunk = '';
      }
    }
    writeSync(fd, chunk);
    closeSync(fd);
    segments++;
  }
  return segments;
}
