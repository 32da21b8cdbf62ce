/**
 * The event log in segments (issue 12 §4): it rotates at a checkpoint once the live segment is full, the
 * hash chain runs across segments, retention drops the oldest with an audit record, memory holds only
 * the live segment, and `log --verify` (streaming every segment) names the first bad record.
 */
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHECKPOINT, type LogRecord } from '../src/core/log/record.js';
import { ChainVerifier, RETENTION, type RetentionData } from '../src/core/log/chain.js';
import { MemoryLogDisk } from '../src/testing/memoryEventLog.js';
import { replay } from '../src/core/log/replay.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { listArchivedSegments, readAllRecords, verifyLogFolder } from '../src/node/logSegments.js';
import { quarantineLog } from '../src/node/quarantineLog.js';
import { createWorld, plain, type World } from './helpers/fixtures.js';
import { startTestServer } from './helpers/testServer.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { readPrivateKeyFile, readPublicKeyFile } from '../src/publish/keyFiles.js';
import { publish } from '../src/publish/publish.js';
import { runCli } from './helpers/runCli.js';

const SEGMENT = { segmentRecords: 8 };

let world: World;
let scratch = 0;
beforeAll(async () => {
  world = await createWorld();
  await world.publishVersion('1.0.0');
});
afterAll(async () => {
  await world.close();
});

/** A copy of the model folder to damage. */
async function copyOfDir(): Promise<string> {
  const copy = join(world.root, `copy-${scratch++}`);
  await cp(world.dir, copy, { recursive: true });
  return copy;
}

async function rewriteSegment(path: string, change: (lines: string[]) => string[]): Promise<void> {
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  await writeFile(path, change(lines).map((line) => `${line}\n`).join(''));
}

it('rotates at the threshold, at a checkpoint; the chain runs across segments and a restart restores the same state', async () => {
  const updater = world.updater({ log: { ...SEGMENT, retainSegments: Infinity } });
  await updater.start();
  for (let i = 0; i < 12; i++) await updater.check();
  const before = plain(updater.getSnapshot());
  const live = [...updater.log.records()];
  updater.stop();

  const archived = listArchivedSegments(world.dir);
  expect(archived.length).toBeGreaterThanOrEqual(3);
  // Names sort in chain order: the first segment is the log's start; each later one, and the live one,
  // begins with a checkpoint chained to the last record of the segment before.
  expect(archived[0]!.name).toBe('events.000000000000.log');
  const all = [...readAllRecords(world.dir)];
  expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i));
  for (const segment of [...archived.slice(1).map((s) => s.firstSeq), live[0]!.seq]) {
    const first = all[segment]!;
    expect(first.type).toBe(CHECKPOINT);
    expect(first.prev).toBe(all[segment - 1]!.hash);
  }
  // The live segment is what the updater held, and all it held: bounded by the threshold (plus the
  // records of the step that was running when it filled).
  expect(live[0]!.type).toBe(CHECKPOINT);
  expect(live).toEqual(all.slice(live[0]!.seq));
  expect(live.length).toBeLessThan(SEGMENT.segmentRecords + 8);
  expect(verifyLogFolder(world.dir).verification).toMatchObject({ ok: true, count: all.length, head: all.at(-1)!.hash });

  // A restart folds from the live segment's checkpoint to the same state.
  const reopened = FileEventLog.open(join(world.dir, LOG_FILE));
  expect(plain(replay(reopened.records())!)).toEqual(before);
  reopened.close();
  const again = world.updater({ log: SEGMENT });
  await again.start();
  expect(again.getSnapshot().context.active?.version).toBe('1.0.0');
  await world.publishVersion('1.1.0');
  expect(await again.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  again.stop();
  expect(verifyLogFolder(world.dir).verification.ok).toBe(true);

  // log --verify and log --json read every segment.
  const verified = await runCli(['log', '--verify', '--json', '--dir', world.dir]);
  expect(verified.json).toMatchObject({ ok: true, records: [...readAllRecords(world.dir)].length, segments: listArchivedSegments(world.dir).length + 1 });
  const dumped = await runCli(['log', '--json', '--dir', world.dir]);
  expect(dumped.stdout.trim().split('\n').map((line) => (JSON.parse(line) as LogRecord).seq)).toEqual([...readAllRecords(world.dir)].map((r) => r.seq));
  const stats = await runCli(['stats', '--json', '--dir', world.dir]);
  expect(stats.json.sessions).toBe(13);
}, 60_000);

it('log --verify names the first bad record of an edited, cut or missing archived segment', async () => {
  const archived = listArchivedSegments(world.dir);
  const middle = archived[1]!;

  const edited = await copyOfDir();
  await rewriteSegment(join(edited, middle.name), (lines) => lines.map((line, i) => (i === 2 ? line.replace('"ts":"', '"ts":"1') : line)));
  const result = await runCli(['log', '--verify', '--json', '--dir', edited]);
  expect(result.code).toBe(1);
  expect(result.json).toMatchObject({ ok: false, seq: middle.firstSeq + 2 });
  expect(result.json.error.message).toMatch(/does not match its hash/);

  // Cut at a record boundary: the next segment's first record is where the chain breaks.
  const cut = await copyOfDir();
  await rewriteSegment(join(cut, middle.name), (lines) => lines.slice(0, -1));
  const next = archived[2]!;
  expect(verifyLogFolder(cut).verification).toMatchObject({ ok: false, seq: next.firstSeq - 1 });

  // A segment removed from the middle, or the first one removed without a retention record.
  const gap = await copyOfDir();
  await rm(join(gap, middle.name));
  expect(verifyLogFolder(gap).verification).toMatchObject({ ok: false, seq: middle.firstSeq });
  const headless = await copyOfDir();
  await rm(join(headless, archived[0]!.name));
  expect(verifyLogFolder(headless).verification).toMatchObject({ ok: false, seq: middle.firstSeq, reason: expect.stringMatching(/no log\.retention record/) });
}, 60_000);

it('retention drops the oldest segments with an audit record naming them and where the kept chain starts', async () => {
  const updater = world.updater({ log: { ...SEGMENT, retainSegments: 2 } });
  await updater.start();
  for (let i = 0; i < 6; i++) await updater.check();
  updater.stop();

  const archived = listArchivedSegments(world.dir);
  expect(archived).toHaveLength(2);
  const all = [...readAllRecords(world.dir)];
  expect(all[0]!.seq).toBe(archived[0]!.firstSeq);
  const audits = all.filter((r) => r.type === RETENTION).map((r) => r.data as unknown as RetentionData);
  expect(audits.length).toBeGreaterThan(0);
  const last = audits.at(-1)!;
  expect(last.dropped.length).toBeGreaterThan(0);
  for (const name of last.dropped) expect(name).toMatch(/^events\.\d{12}\.log$/);
  expect(last.keptFrom).toEqual({ seq: all[0]!.seq, prev: all[0]!.prev });
  expect(verifyLogFolder(world.dir).verification).toMatchObject({ ok: true, count: all.length });

  // Dropping one more by hand is not retention: verify names where the log now starts.
  const tampered = await copyOfDir();
  await rm(join(tampered, archived[0]!.name));
  expect(verifyLogFolder(tampered).verification).toMatchObject({ ok: false, seq: archived[1]!.firstSeq });

  // Quarantine sets every segment aside.
  const quarantined = await copyOfDir();
  const report = await quarantineLog(quarantined, { force: true });
  expect(report.archivedMovedTo).toHaveLength(2);
  expect(listArchivedSegments(quarantined)).toEqual([]);
  expect(verifyLogFolder(quarantined).verification).toMatchObject({ ok: true, count: 1 });
}, 60_000);

it('a 0.1.0 install (one log file) opens in the same state, rotates into segments, verifies and updates', async () => {
  const golden = fileURLToPath(new URL('./golden/v0.1.0/', import.meta.url));
  const copy = join(world.root, 'golden');
  await cp(golden, copy, { recursive: true });
  const dir = join(copy, 'install');
  const expected = JSON.parse(await readFile(join(golden, 'expected-status.json'), 'utf8')) as { state: string; active: { version: string } };
  const server = await startTestServer({ root: join(copy, 'site') });
  const updater = createModelUpdater({
    manifestUrl: `${server.url}manifest.json`,
    dir,
    trustedKeys: [await readPublicKeyFile(join(golden, 'release.pub'))],
    policy: { checkOnStart: false },
    // Smaller than the golden log: its first settled moment rotates it.
    log: { segmentRecords: 10 },
  });
  try {
    await updater.start();
    expect(updater.getSnapshot().matches(expected.state as never)).toBe(true);
    expect(updater.active?.version).toBe(expected.active.version);
    await updater.check();
    expect(listArchivedSegments(dir).map((s) => s.name)).toContain('events.000000000000.log');
    expect(updater.log.records()[0]!.type).toBe(CHECKPOINT);
    expect(verifyLogFolder(dir).verification.ok).toBe(true);
    // The log goes on across the rotation: a new release installs.
    await writeFile(join(world.root, 'model-1.2.0.bin'), 'weights of 1.2.0\n');
    await publish({ out: join(copy, 'site'), version: '1.2.0', inputs: [join(world.root, 'model-1.2.0.bin')], keys: [await readPrivateKeyFile(join(golden, 'release.key'))], expires: '2099-01-01T00:00:00.000Z' });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.2.0' });
  } finally {
    updater.stop();
    await server.close();
  }
  expect(verifyLogFolder(dir).verification.ok).toBe(true);
}, 60_000);

it('the in-memory log (simulator) rotates too: it holds only the live segment, and retention is audited', () => {
  const disk = new MemoryLogDisk();
  const options = { segmentRecords: 4, retainSegments: 1 };
  let log = disk.open(() => 0, options);
  for (let i = 0; i < 30; i++) {
    log.append('check.requested', null, { i });
    if (log.segmentFull()) {
      log.rotate(CHECKPOINT, null, { i });
      log.close();
      log = disk.open(() => 0, options);
    }
  }
  expect(log.records().length).toBeLessThanOrEqual(options.segmentRecords);
  expect(disk.archived).toHaveLength(1);
  const kept = [...disk.archived.flat(), ...disk.records];
  const chain = new ChainVerifier();
  for (const record of kept) chain.push(record);
  expect(chain.result()).toMatchObject({ ok: true, count: kept.length });
  expect(kept.at(-1)!.seq).toBeGreaterThan(30);
  expect(kept.some((r) => r.type === RETENTION)).toBe(true);
});

it('refuses a log option that is not a whole number', () => {
  expect(() => world.updater({ log: { segmentRecords: 0 } })).toThrow(/log\.segmentRecords/);
});
