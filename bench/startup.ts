/**
 * `npm run bench:startup`: start-up time of an updater whose log holds many records (10,000 by default,
 * BENCH_RECORDS to change): the first start folds the whole log, later ones start from the checkpoint the
 * first one wrote. Last line: `{"records", "fullReplayMs", "checkpointMs"}`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { publish } from '../src/publish/publish.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { startTestServer } from '../test/helpers/testServer.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000);
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

  const timeStart = async () => {
    const updater = createModelUpdater(options);
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
  console.log(JSON.stringify({ records: RECORDS, fullReplayMs: Math.round(fullReplayMs * 10) / 10, checkpointMs: Math.round(checkpointMs * 10) / 10 }));
} finally {
  await server.close();
  await rm(root, { recursive: true, force: true });
}
