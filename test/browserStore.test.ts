/**
 * The browser runtime's IndexedDB adapters, run in Node against fake-indexeddb and the loopback server:
 * the same lifecycle as the Node adapters, one key per log record, resume from persisted chunks, and a
 * hash chain that is byte-for-byte the one the file log writes.
 */
import 'fake-indexeddb/auto';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { keys, setMany, createStore } from 'idb-keyval';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowserModelUpdater, IdbEventLog, readIdbLog, type BrowserModelUpdater, type BrowserModelUpdaterOptions } from '../src/browser/index.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { replay } from '../src/core/log/replay.js';
import { CHECKPOINT } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { ChainVerifier, RETENTION } from '../src/core/log/chain.js';
import { isUpdateError } from '../src/core/errors.js';
import { createWorld, plain, type World } from './helpers/fixtures.js';

let world: World;
const updaters: BrowserModelUpdater<any>[] = [];
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  for (const updater of updaters.splice(0)) updater.stop();
  await world.close();
});

function browserUpdater(options: Partial<BrowserModelUpdaterOptions<any>> = {}): BrowserModelUpdater<any> {
  const updater = createBrowserModelUpdater({
    manifestUrl: world.manifestUrl,
    name: options.name ?? randomUUID(),
    appVersion: '1.0.0',
    allowUnsigned: true,
    policy: { checkOnStart: false },
    retry: { maxCheckAttempts: 1, maxDownloadAttempts: 1 },
    storage: { estimate: async () => ({ quota: 1e9, usage: 0 }) },
    ...options,
  });
  updaters.push(updater);
  return updater;
}

const sha256 = async (blob: Blob) => createHash('sha256').update(new Uint8Array(await blob.arrayBuffer())).digest('hex');

describe('IndexedDB store', () => {
  it('installs, updates and rolls back with model files as Blobs; the log replays to the live snapshot', async () => {
    const v1 = randomBytes(300_000);
    await world.publishVersion('1.0.0', { files: { 'model.bin': v1 } });
    const updater = browserUpdater({ chunkBytes: 64 * 1024, progressIntervalMs: 0 });
    const progress: number[] = [];
    updater.on('progress', (p) => progress.push(p.bytes));
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(progress.at(-1)).toBe(300_000);
    const blob = await updater.store.readFile('1.0.0', 'model.bin');
    expect(blob).toBeInstanceOf(Blob);
    expect(await sha256(blob)).toBe(createHash('sha256').update(v1).digest('hex'));
    expect(updater.active?.path).toBe(`indexeddb:model-updater:${updater.store.name}/versions/1.0.0`);

    await world.publishVersion('1.1.0', { files: { 'model.bin': Buffer.alloc(1000, 1), 'vocab/tokens.txt': Buffer.from('a b c') } });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(await (await updater.store.readFile('1.1.0', 'vocab/tokens.txt')).text()).toBe('a b c');
    expect((await updater.store.listVersions()).sort()).toEqual(['1.0.0', '1.1.0']);
    expect(await updater.store.stagedBytes('1.1.0')).toBe(0);

    expect(await updater.rollback()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    expect((await updater.store.readPointer())?.active.version).toBe('1.0.0');
    await updater.flush();
    const stored = await readIdbLog(updater.store.name);
    expect(stored).toEqual(updater.log.records());
    expect(verifyLog(stored).ok).toBe(true);
    expect(plain(replay(stored)!)).toEqual(plain(updater.getSnapshot()));
  });

  it('resumes a dropped download from the persisted bytes with Range, hashing only the new bytes', async () => {
    const content = randomBytes(200_000);
    await world.publishVersion('1.0.0', { files: { 'model.bin': content } });
    world.server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 70_000, times: 1 });
    const name = randomUUID();
    const first = browserUpdater({ name, chunkBytes: 32 * 1024 });
    await first.start();
    const failed = await first.check();
    expect(failed).toMatchObject({ outcome: 'failed', error: { code: 'NETWORK_UNAVAILABLE' } });
    expect(await first.store.stagedBytes('1.0.0')).toBe(70_000);
    first.stop();

    // A new page load: the same databases, a new updater.
    const second = browserUpdater({ name, chunkBytes: 32 * 1024 });
    await second.start();
    expect(await second.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    const fileRequests = world.server.requests.filter((r) => r.path === '/1.0.0/model.bin');
    expect(fileRequests.map((r) => r.headers.range)).toEqual([undefined, 'bytes=70000-']);
    expect(fileRequests[1]!.status).toBe(206);
    expect(await sha256(await second.store.readFile('1.0.0', 'model.bin'))).toBe(createHash('sha256').update(content).digest('hex'));
  });

  it('stores shared content once and collects what no kept version uses', async () => {
    const shared = randomBytes(20_000);
    await world.publishVersion('1.0.0', { files: { 'model.bin': randomBytes(10_000), 'vocab.txt': shared } });
    const updater = browserUpdater();
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0', { files: { 'model.bin': randomBytes(10_000), 'vocab.txt': shared } });
    await updater.check();
    expect(world.server.requests.filter((r) => r.path === '/1.1.0/vocab.txt')).toEqual([]);
    expect(await updater.store.readFile('1.1.0', 'vocab.txt').then(sha256)).toBe(createHash('sha256').update(shared).digest('hex'));

    const report = await updater.store.collectGarbage(['1.1.0']);
    expect(report).toMatchObject({ removedVersions: ['1.0.0'], freedBytes: 10_000 });
    expect(await updater.store.listVersions()).toEqual(['1.1.0']);
    expect((await updater.store.readFile('1.1.0', 'vocab.txt')).size).toBe(20_000);
  });

  it('fails before the first byte when navigator.storage.estimate() leaves too little room', async () => {
    await world.publishVersion('1.0.0', { bytes: 10_000 });
    const updater = browserUpdater({ storage: { estimate: async () => ({ quota: 2_000_000, usage: 1_500_000 }) } });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'failed', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
    expect(world.server.requests.filter((r) => r.path.includes('model.bin'))).toEqual([]);
  });

  it('fails a download that trickles in below the minimum throughput with DOWNLOAD_STALLED', async () => {
    await world.publishVersion('1.0.0', { bytes: 2_000_000 });
    world.server.fault('/1.0.0/model.bin', { kind: 'trickle', bytes: 100, intervalMs: 20 });
    const updater = browserUpdater({ download: { minBytesPerSecond: 1_000_000, throughputWindowMs: 300 } });
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'DOWNLOAD_STALLED' } });
    expect(result.error!.message).toMatch(/below the minimum of 1000000 B\/s/);
    expect(updater.active).toBeNull();
  });

  it('asks for persistent storage on start and records the answer', async () => {
    const asked: string[] = [];
    const updater = browserUpdater({
      storage: { estimate: async () => ({ quota: 1e9, usage: 0 }), persisted: async () => false, persist: async () => (asked.push('persist'), true) },
    });
    await updater.start();
    expect(asked).toEqual(['persist']);
    expect(updater.store.persisted).toBe(true);
  });

  it('discards a corrupted download (INTEGRITY_MISMATCH) and keeps the active version', async () => {
    await world.publishVersion('1.0.0', { bytes: 5_000 });
    const updater = browserUpdater();
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0', { bytes: 50_000 });
    world.server.fault('/1.1.0/model.bin', { kind: 'corrupt', times: 1 });
    expect(await updater.check()).toMatchObject({ outcome: 'failed', error: { code: 'INTEGRITY_MISMATCH' } });
    expect(updater.active?.version).toBe('1.0.0');
    expect(await updater.store.stagedBytes('1.1.0')).toBe(0);
  });
});

describe('IndexedDB event log', () => {
  it('keeps one key per record and reopens to the same verified chain', async () => {
    const name = randomUUID();
    const log = await IdbEventLog.open(name, () => 0);
    for (let i = 0; i < 50; i++) log.append('CHECK', null, { i });
    await log.flush();
    log.close();
    const stored = await keys(createStore(`model-updater:${name}:log`, 'records'));
    expect(stored).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const reopened = await IdbEventLog.open(name);
    expect(reopened.records()).toEqual(log.records());
    expect(reopened.append('CANCEL', null, {}).prev).toBe(log.records().at(-1)!.hash);
  });

  it('writes the same hashes as the file log, so one chain verifies in both runtimes', async () => {
    const fileLog = FileEventLog.open(join(world.root, 'events.log'), () => 1_700_000_000_000);
    const idbLog = await IdbEventLog.open(randomUUID(), () => 1_700_000_000_000);
    for (const [type, data] of [['CHECK', { trigger: 'manual', at: 1 }], ['PROGRESS', { progress: { bytes: 5, note: 'ünïcode ✓' } }]] as const) {
      expect(idbLog.append(type, 's1', data).hash).toBe(fileLog.append(type, 's1', data).hash);
    }
    fileLog.close();
    // A log written by Node opens in the browser adapter.
    const name = randomUUID();
    await setMany(fileLog.records().map((r) => [r.seq, r]), createStore(`model-updater:${name}:log`, 'records'));
    expect((await IdbEventLog.open(name)).records()).toEqual(fileLog.records());
  });

  it('rotates into segments, reads back only the live one, and retention drops the oldest with an audit record', async () => {
    const name = randomUUID();
    const options = { segmentRecords: 5, retainSegments: 2 };
    let log = await IdbEventLog.open(name, () => 0, options);
    let rotations = 0;
    for (let i = 0; i < 40; i++) {
      log.append('CHECK', null, { i });
      if (log.segmentFull()) {
        log.rotate(CHECKPOINT, null, { rotation: ++rotations });
        // A restart between rotations reads the live segment only.
        await log.flush();
        log.close();
        log = await IdbEventLog.open(name, () => 0, options);
        expect(log.records()[0]).toMatchObject({ type: CHECKPOINT, data: { rotation: rotations } });
      }
    }
    await log.flush();
    expect(rotations).toBeGreaterThan(4);
    expect(log.records().length).toBeLessThanOrEqual(options.segmentRecords);
    // What is stored: the live segment and two archived ones, their chain verifying from where the
    // last retention record says it starts.
    const stored = await readIdbLog(name);
    const audits = stored.filter((r) => r.type === RETENTION);
    expect(audits.length).toBeGreaterThan(0);
    expect(audits.at(-1)!.data.keptFrom).toEqual({ seq: stored[0]!.seq, prev: stored[0]!.prev });
    expect(stored.filter((r) => r.type === CHECKPOINT)).toHaveLength(3);
    const chain = new ChainVerifier();
    for (const record of stored) chain.push(record);
    expect(chain.result()).toMatchObject({ ok: true, count: stored.length });
    expect(stored.at(-1)).toEqual(log.records().at(-1));
    // Dropping the oldest kept records by hand is not retention.
    const tampered = new ChainVerifier();
    for (const record of stored.slice(3)) tampered.push(record);
    expect(tampered.result()).toMatchObject({ ok: false, seq: stored[3]!.seq });
  });

  it('refuses a tampered log with LOG_CORRUPT naming the record', async () => {
    const name = randomUUID();
    const log = await IdbEventLog.open(name);
    for (let i = 0; i < 3; i++) log.append('CHECK', null, { i });
    await log.flush();
    const edited = { ...log.records()[1]!, data: { i: 99 } };
    await setMany([[1, edited]], createStore(`model-updater:${name}:log`, 'records'));
    const error = await IdbEventLog.open(name).catch((e) => e);
    expect(isUpdateError(error) && error.code).toBe('LOG_CORRUPT');
    expect(error.message).toMatch(/record 1/);
  });
});
