/**
 * No fsync of the event log on the host's hot path (issue 12 §4): each record is written at once (a
 * killed process keeps it), fsyncs are grouped off the event loop, and the irreversible steps wait for
 * the log to be durable first (the write-ahead rule). fsyncs are watched at the file-system edge
 * (helpers/fsOps.ts), or, where their timing matters, through the log's `sync` seam (a slow disk).
 */
import { fdatasync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileEventLog, type LogSync } from '../src/node/fileEventLog.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { watchFs, type FsOp } from './helpers/fsOps.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

/** A disk whose fsyncs finish only when the test lets them (each really syncs first). */
function heldSync() {
  const held: Array<() => void> = [];
  const sync: LogSync = {
    fdatasync: (fd, callback) => fdatasync(fd, (error) => held.push(() => callback(error))),
    fdatasyncSync: () => undefined,
  };
  return { sync, held, calls: () => held.length };
}

it('a download journals its progress records without a blocking fsync, in fewer fsyncs than records', async () => {
  await world.install('1.0.0');
  await world.publishVersion('1.1.0', { bytes: 16 * 1024 * 1024 });
  // Progress every 0 ms: as many progress records as the transfer makes reports (more hot path, not less).
  const updater = world.updater({ progressIntervalMs: 0 });
  const logPath = join(world.dir, LOG_FILE);
  const ops: FsOp[] = [];
  let watching = false;
  // Watching from before start: a descriptor's fsyncs are named by the path it was opened on.
  const stop = await watchFs((op) => watching && ops.push(op));
  await updater.start();
  const before = updater.log.records().at(-1)!.seq;
  watching = true;
  try {
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  } finally {
    stop();
  }
  const written = updater.log.records().filter((r) => r.seq > before);
  updater.stop();
  expect(written.filter((r) => r.type === 'download.progressed').length).toBeGreaterThan(5);
  const logSyncs = ops.filter((op) => op.kind === 'fsync' && op.path === logPath);
  // None blocks the event loop, and they are grouped (one in flight, the records meanwhile share the next).
  expect(logSyncs.filter((op) => op.call?.endsWith('Sync'))).toEqual([]);
  expect(logSyncs.length).toBeGreaterThan(0);
  expect(logSyncs.length).toBeLessThan(written.length);
  // Every record is in the file, synced or not: a killed process loses none.
  const lines = (await readFile(logPath, 'utf8')).trim().split('\n');
  expect(JSON.parse(lines.at(-1)!).hash).toBe(written.at(-1)!.hash);
});

it('groups fsyncs: one in flight, the records written meanwhile share the next; flush waits for them', async () => {
  const disk = heldSync();
  await mkdir(world.dir, { recursive: true });
  const log = FileEventLog.open(join(world.dir, LOG_FILE), Date.now, { sync: disk.sync });
  try {
    for (let i = 0; i < 10; i++) log.append('download.progressed', null, { i });
    let flushed = false;
    const flushing = log.flush().then(() => (flushed = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    await waitFor(() => disk.calls() === 1);
    expect(flushed).toBe(false);
    disk.held.shift()!(); // the first fsync (record 0) ends: the other nine share one more
    await waitFor(() => disk.calls() === 1);
    expect(flushed).toBe(false);
    disk.held.shift()!();
    await flushing;
    expect(disk.held).toEqual([]);
  } finally {
    log.close();
  }
});

it('the pointer switch waits until the records that led to it are durable (write-ahead)', async () => {
  await world.install('1.0.0');
  await world.publishVersion('1.1.0');
  // fsyncs of the log finish at once, except while `holding`: then only a flush() lets them go.
  let holding = false;
  let durable = 0;
  const waiting: Array<() => void> = [];
  let written = 0;
  const sync: LogSync = {
    fdatasync: (fd, callback) => {
      const covers = written;
      fdatasync(fd, (error) => {
        const done = () => {
          durable = Math.max(durable, covers);
          callback(error);
        };
        if (holding) waiting.push(done);
        else done();
      });
    },
    fdatasyncSync: () => undefined,
  };
  const updater = world.updater({ log: { sync } });
  await updater.start();
  const log = updater.log as FileEventLog;
  const append = log.append.bind(log);
  log.append = (...args) => {
    const record = append(...args);
    written = record.seq + 1;
    return record;
  };
  const flush = log.flush.bind(log);
  log.flush = () => {
    holding = false;
    for (const done of waiting.splice(0)) done();
    return flush();
  };
  written = log.records().at(-1)!.seq + 1;
  const atSwitch: Array<{ durable: number; written: number }> = [];
  const stop = await watchFs((op) => {
    // Hold the log's fsyncs from the moment the new version is in place until the switch.
    if (op.kind === 'rename' && op.to === join(world.dir, 'versions', '1.1.0')) holding = true;
    if (op.kind === 'rename' && op.to === join(world.dir, 'active.json')) atSwitch.push({ durable, written });
  });
  try {
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  } finally {
    stop();
    updater.stop();
  }
  expect(atSwitch).toHaveLength(1);
  expect(atSwitch[0]!.durable).toBe(atSwitch[0]!.written);
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 10_000) throw new Error('the condition never held');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
