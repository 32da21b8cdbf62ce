/**
 * The end of the log's hash chain is anchored outside it (issue 12 §2): the active pointer and trust.json
 * record the last record's seq and hash at each switch, accepted manifest and checkpoint. A log cut back
 * at a record boundary still chains, but `log --verify` and start-up now see that its tail is gone.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missingTail } from '../src/core/log/logAnchor.js';
import { GENESIS, sealRecord, type LogRecord } from '../src/core/log/record.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import type { SavedTrust, TrustStore } from '../src/core/ports/trustStore.js';
import { TrustKeeper } from '../src/core/trust/trustKeeper.js';
import { runCli } from './helpers/runCli.js';
import { createSignedRepository, type SignedRepository } from './helpers/signedRepository.js';
import { startTestServer } from './helpers/testServer.js';

let repo: SignedRepository;
beforeEach(async () => {
  repo = await createSignedRepository();
});
afterEach(async () => {
  await repo.close();
});

const logPath = () => join(repo.dir, 'events.log');
const logLines = async () => (await readFile(logPath(), 'utf8')).split('\n').filter(Boolean);
const writeLines = (lines: string[]) => writeFile(logPath(), lines.map((line) => `${line}\n`).join(''));
const folderBytes = async () => ({
  log: await readFile(logPath(), 'utf8'),
  pointer: await readFile(join(repo.dir, 'active.json'), 'utf8'),
  trust: await readFile(join(repo.dir, 'trust.json'), 'utf8'),
});

/** 1.0.0 then 1.1.0 installed from signed manifests (serials 1 and 2); the updater stopped. */
async function updatedTwice(): Promise<void> {
  await repo.addVersion('1.0.0');
  await repo.publish();
  const updater = repo.updater();
  await updater.start();
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  await repo.addVersion('1.1.0');
  await repo.publish();
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  updater.stop();
}

/** The anchors written: both name a record the log holds. */
async function anchors() {
  const pointer = JSON.parse(await readFile(join(repo.dir, 'active.json'), 'utf8'));
  const trust = JSON.parse(await readFile(join(repo.dir, 'trust.json'), 'utf8'));
  return { pointer: pointer.logHead, trust: trust.logHead };
}

/** The log cut back to end before the record an anchor names, `extra` records earlier still. */
async function cutBelowAnchor(extra: number): Promise<number> {
  const { pointer, trust } = await anchors();
  const highest = Math.max(pointer.seq, trust.seq);
  const lines = await logLines();
  await writeLines(lines.slice(0, highest - extra));
  return highest;
}

/** `start()` must refuse with LOG_CORRUPT, naming the cut, and change nothing on disk. */
async function expectStartRefused(): Promise<void> {
  const before = await folderBytes();
  const error = await repo.updater().start().then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toMatchObject({ code: 'LOG_CORRUPT', message: expect.stringMatching(/tail was (removed|cut)/) });
  expect((error as Error).message).toContain('log --quarantine');
  expect(await folderBytes()).toEqual(before);
  // The failed start left the folder unlocked: `log --quarantine` and a later start may run.
}

describe('the chain-end anchor', () => {
  it('is written with the pointer and trust.json, and an intact log passes `log --verify` and start-up', async () => {
    await updatedTwice();
    const { pointer, trust } = await anchors();
    const records = (await logLines()).map((line) => JSON.parse(line) as LogRecord);
    for (const head of [pointer, trust]) expect(records[head.seq]!.hash).toBe(head.hash);
    const verified = await runCli(['log', '--dir', repo.dir, '--verify', '--json']);
    expect(verified.code, verified.stdout).toBe(0);
    const updater = repo.updater();
    await updater.start();
    expect(updater.active?.version).toBe('1.1.0');
  });

  it('a log cut back by one record at a boundary: `log --verify` exits 1 naming it, start() refuses; quarantine, then start works', async () => {
    await updatedTwice();
    const anchored = await cutBelowAnchor(0);
    const verified = await runCli(['log', '--dir', repo.dir, '--verify', '--json']);
    expect(verified.code).toBe(1);
    expect(verified.json).toMatchObject({ ok: false, error: { code: 'LOG_CORRUPT' } });
    expect(verified.json.error.message).toContain(`reached record ${anchored}`);
    expect(verified.json.error.message).toContain('tail was removed');
    expect(verified.json.error.message).toContain('log --quarantine');
    await expectStartRefused();

    const quarantined = await runCli(['log', '--dir', repo.dir, '--quarantine', '--json']);
    expect(quarantined.code, quarantined.stdout).toBe(0);
    expect(quarantined.json.reason).toContain('tail was removed');
    // The anchors start again with the new log; the keys and the serial stay.
    expect(await anchors()).toEqual({ pointer: undefined, trust: undefined });
    expect(JSON.parse(await readFile(join(repo.dir, 'trust.json'), 'utf8'))).toMatchObject({ keys: [repo.rootKey.publicKey], serial: 2 });
    const updater = repo.updater();
    await updater.start();
    expect(updater.active?.version).toBe('1.1.0');
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [repo.rootKey.publicKey], serial: 2 });
    updater.stop();
    expect((await runCli(['log', '--dir', repo.dir, '--verify'])).code).toBe(0);
  });

  it('a log cut back by several records at a boundary is refused the same way', async () => {
    await updatedTwice();
    await cutBelowAnchor(6);
    await expectStartRefused();
    const verified = await runCli(['log', '--dir', repo.dir, '--verify', '--json']);
    expect(verified.code).toBe(1);
    expect(verified.json.error.code).toBe('LOG_CORRUPT');
  });

  it('a tail cut and written again (the anchored seq with another record) is refused', async () => {
    await updatedTwice();
    const { pointer, trust } = await anchors();
    const last = pointer.seq > trust.seq ? pointer : trust;
    const records = (await logLines()).map((line) => JSON.parse(line) as LogRecord).slice(0, last.seq);
    const forged = sealRecord({ seq: last.seq, ts: new Date(0).toISOString(), session: null, type: 'conditions.changed', data: {}, prev: records[records.length - 1]?.hash ?? GENESIS });
    await writeLines([...records, forged].map((record) => JSON.stringify(record)));
    await expectStartRefused();
    const verified = await runCli(['log', '--dir', repo.dir, '--verify', '--json']);
    expect(verified.code).toBe(1);
    expect(verified.json.error.message).toContain('cut and rewritten');
  });

  it('a deleted log is refused too, and `log --quarantine` starts a new one', async () => {
    await updatedTwice();
    await rm(logPath());
    await expect(repo.updater().start()).rejects.toMatchObject({ code: 'LOG_CORRUPT', message: expect.stringContaining('is empty') });
    const quarantined = await runCli(['log', '--dir', repo.dir, '--quarantine', '--json']);
    expect(quarantined.code, quarantined.stdout).toBe(0);
    const updater = repo.updater();
    await updater.start();
    expect(updater.active?.version).toBe('1.1.0');
  });
});

describe('missingTail', () => {
  const chain = (from: number, count: number): LogRecord[] => {
    const records: LogRecord[] = [];
    let prev = GENESIS;
    for (let seq = from; seq < from + count; seq++) {
      const record = sealRecord({ seq, ts: new Date(seq).toISOString(), session: null, type: 'conditions.changed', data: {}, prev });
      records.push(record);
      prev = record.hash;
    }
    return records;
  };

  it('checks only the records held: an anchor before the first one held (a dropped segment) counts as reached', () => {
    const held = chain(10, 5);
    const old = chain(0, 10)[5]!;
    expect(missingTail(held, [{ head: { seq: old.seq, hash: old.hash }, where: 'the pointer' }])).toBeNull();
    expect(missingTail(held, [{ head: { seq: 12, hash: held[2]!.hash }, where: 'the pointer' }])).toBeNull();
    expect(missingTail(held, [{ head: { seq: 12, hash: 'f'.repeat(64) }, where: 'the pointer' }])).toMatch(/another record 12 than the pointer names/);
    expect(missingTail(held, [{ head: { seq: 15, hash: 'f'.repeat(64) }, where: 'the pointer' }])).toMatch(/ends at record 14, but the pointer says it reached record 15/);
    expect(missingTail([], [null, undefined])).toBeNull();
  });
});

describe('TrustKeeper', () => {
  it('writes through one queue: an anchor and a newer trust state never overtake each other, and the last write has both', async () => {
    const writes: SavedTrust[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const store: TrustStore = {
      read: async () => ({ keys: [], threshold: 1, serial: 1, anchor: '', logHead: { seq: 1, hash: 'a'.repeat(64) } }),
      write: async (saved) => {
        await gate;
        writes.push(saved);
      },
    };
    let seq = 5;
    const keeper = new TrustKeeper(store, async () => ({ seq, hash: 'b'.repeat(64) }));
    await keeper.read();
    const anchored = keeper.anchor();
    const saved = keeper.save({ keys: [], threshold: 1, serial: 2, anchor: '' });
    seq = 9;
    open();
    await Promise.all([anchored, saved]);
    expect(writes).toHaveLength(2);
    expect(writes.at(-1)).toEqual({ keys: [], threshold: 1, serial: 2, anchor: '', logHead: { seq: 9, hash: 'b'.repeat(64) } });
    // Stopped: no more anchors (another process may own the folder), but nothing is lost that was saved.
    keeper.close();
    await keeper.anchor();
    expect(writes).toHaveLength(2);
  });

  it('drops an anchor the updater stopped under (queued, or waiting for the log to be durable)', async () => {
    const writes: SavedTrust[] = [];
    const store: TrustStore = { read: async () => ({ keys: [], threshold: 1, serial: 1, anchor: '' }), write: async (saved) => void writes.push(saved) };
    let durable!: () => void;
    const flushed = new Promise<void>((resolve) => (durable = resolve));
    let asked!: () => void;
    const askedForHead = new Promise<void>((resolve) => (asked = resolve));
    // The log's head arrives only once the log is durable; stop() lands in between.
    const keeper = new TrustKeeper(store, async () => {
      asked();
      await flushed;
      return { seq: 3, hash: 'c'.repeat(64) };
    });
    await keeper.read();
    const waiting = keeper.anchor();
    const queued = keeper.anchor();
    await askedForHead;
    keeper.close();
    durable();
    await Promise.all([waiting, queued]);
    expect(writes).toEqual([]);
    // A trust state saved before the stop is still written whole.
    const open = new TrustKeeper(store, async () => ({ seq: 4, hash: 'd'.repeat(64) }));
    await open.read();
    const saving = open.save({ keys: [], threshold: 1, serial: 7, anchor: '' });
    open.close();
    await saving;
    expect(writes).toEqual([{ keys: [], threshold: 1, serial: 7, anchor: '', logHead: { seq: 4, hash: 'd'.repeat(64) } }]);
  });
});

describe('a 0.1.0 install (no anchors)', () => {
  it('verifies, opens, updates, and from then on carries anchors', async () => {
    const golden = fileURLToPath(new URL('./golden/v0.1.0/', import.meta.url));
    const root = await mkdtemp(join(tmpdir(), 'model-updater-golden-'));
    const server = await startTestServer({ root: join(golden, 'site') });
    try {
      const dir = join(root, 'install');
      await cp(join(golden, 'install'), dir, { recursive: true });
      expect((await runCli(['log', '--dir', dir, '--verify'])).code).toBe(0);
      const key = (await readFile(join(golden, 'release.pub'), 'utf8')).trim();
      const updater = createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir, trustedKeys: [key], policy: { checkOnStart: false } });
      await updater.start();
      expect(updater.active?.version).toBe('1.0.0');
      const result = await updater.check();
      expect(['up-to-date', 'activated']).toContain(result.outcome);
      updater.stop();
      expect((await runCli(['log', '--dir', dir, '--verify'])).code).toBe(0);
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
