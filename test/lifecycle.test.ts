import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from 'xstate';
import { isUpdateError, UpdateError, type ModelUpdater } from '../src/index.js';
import { replay } from '../src/core/log/replay.js';
import { verifyLog } from '../src/core/log/chain.js';
import { createWorld, plain, waitForSnapshot, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});


async function sha256(path: string) {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** The guarantees every outcome must keep: the expected version active and intact, staging clean, log valid, replay exact. */
async function expectIntact(updater: ModelUpdater<any>, version: string | null) {
  expect(updater.active?.version ?? null).toBe(version);
  if (updater.active) {
    for (const file of updater.active.files) expect(await sha256(join(updater.active.path, file.path))).toBe(file.sha256);
  }
  expect(await readdir(join(world.dir, 'staging'), { recursive: true })).toEqual([]);
  const records = updater.log.records();
  expect(verifyLog(records).ok).toBe(true);
  expect(plain(replay(records)!)).toEqual(plain(updater.getSnapshot()));
}

describe('happy path', () => {
  it('installs the newest version with progress, then updates 1.0.0 → 1.1.0 keeping 1.0.0 for rollback', async () => {
    await world.publishVersion('1.0.0', { bytes: 2_000_000 });
    const loaded: string[] = [];
    const updater = world.updater({
      progressIntervalMs: 0,
      loader: { load: (model) => (loaded.push(model.version), { version: model.version }), healthCheck: () => true },
    });
    const progress: number[] = [];
    updater.on('progress', (p) => progress.push(p.bytes));
    const activated: string[] = [];
    updater.on('activated', (e) => activated.push(e.version));
    await updater.start();

    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0', error: null });
    expect(progress.at(-1)).toBe(2_000_000);
    expect(progress.length).toBeGreaterThan(1);
    await expectIntact(updater, '1.0.0');

    await world.publishVersion('1.1.0', { files: { 'model.bin': Buffer.alloc(1000, 1), 'vocab/tokens.txt': Buffer.from('a b c') } });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(updater.active!.files.map((f) => f.path).sort()).toEqual(['model.bin', 'vocab/tokens.txt']);
    expect(updater.getSnapshot().context.retained.map((v) => v.version)).toEqual(['1.0.0']);
    expect(loaded).toEqual(['1.0.0', '1.1.0']);
    expect(updater.model).toEqual({ version: '1.1.0' });
    expect(activated).toEqual(['1.0.0', '1.1.0']);
    await expectIntact(updater, '1.1.0');
  });

  it('answers an unchanged manifest with one 304 and stays up to date', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater();
    await updater.start();
    await updater.check();
    const before = world.server.requests.length;
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    const after = world.server.requests.slice(before);
    expect(after).toHaveLength(1);
    expect(after[0]!.headers['if-none-match']).toBeTruthy();
    expect(after[0]!.status).toBe(304);
  });

  it('skips versions on another channel or whose requires.app excludes the app', async () => {
    await world.publishVersion('1.0.0');
    await world.publishVersion('2.0.0', { requiresApp: '>=2.0.0' });
    await world.publishVersion('3.0.0', { channel: 'beta' });
    const updater = world.updater({ appVersion: '1.5.0' });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
  });

  it('shares one session between concurrent checks', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater();
    await updater.start();
    const results = await Promise.all([updater.check(), updater.check(), updater.check()]);
    expect(new Set(results.map((r) => r.sessionId)).size).toBe(1);
    expect(world.modelRequests()).toHaveLength(1);
  });
});

describe('approval, cancel and rollback', () => {
  it("with approval 'ask' waits for approve() before downloading", async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater({ policy: { approval: 'ask', checkOnStart: false } });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'awaiting-approval', version: '1.0.0' });
    expect(world.modelRequests()).toHaveLength(0);
    expect(await updater.approve()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    await expectIntact(updater, '1.0.0');
  });

  it('cancel() during a download stops it, keeps the old version, and a later check completes it', async () => {
    await world.install('1.0.0');

    await world.publishVersion('1.1.0', { bytes: 3_000_000 });
    world.server.fault('/1.1.0/model.bin', { kind: 'hang', times: 1 });
    const updater = world.updater();
    await updater.start();
    const result = updater.check();
    // Cancel once the server holds the hanging request, so the hang is not left for the next try.
    await vi.waitFor(() => expect(world.modelRequests().filter((r) => r.path === '/1.1.0/model.bin')).toHaveLength(1));
    updater.cancel();
    expect(await result).toMatchObject({ outcome: 'cancelled', error: { code: 'CANCELLED' } });
    expect(updater.active?.version).toBe('1.0.0');
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await expectIntact(updater, '1.1.0');
  });

  it('rollback() restores the retained version and rejects an unknown one with ROLLBACK_UNAVAILABLE', async () => {
    await world.publishVersion('1.0.0');
    const unloaded: string[] = [];
    const updater = world.updater({ loader: { load: (m) => m.version, unload: (m) => void unloaded.push(m.version) } });
    await updater.start();
    await updater.check();
    await expect(updater.rollback()).rejects.toMatchObject({ code: 'ROLLBACK_UNAVAILABLE' });
    await world.publishVersion('1.1.0');
    await updater.check();
    await expect(updater.rollback('0.9.0')).rejects.toMatchObject({ code: 'ROLLBACK_UNAVAILABLE' });
    expect(await updater.rollback()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    expect(updater.getSnapshot().context.retained.map((v) => v.version)).toEqual(['1.1.0']);
    expect(unloaded).toContain('1.1.0');
    expect(updater.model).toBe('1.0.0');
    await expectIntact(updater, '1.0.0');
  });
});

describe('quarantine: a build left by a rollback is not taken again', () => {
  it('a build that failed its health check is not downloaded again, until a new build is offered', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater({ loader: { load: (m) => m.version, healthCheck: (m) => m.version !== '1.1.0' } });
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0');
    expect(await updater.check()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
    const downloads = world.modelRequests().length;
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(world.modelRequests().length).toBe(downloads);
    expect(updater.getSnapshot().context.quarantine).toMatchObject([{ version: '1.1.0', reason: 'HEALTH_CHECK_FAILED' }]);
    await world.publishVersion('1.1.1');
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.1' });
    await expectIntact(updater, '1.1.1');
  });

  it('a manual rollback sticks: the next check does not reinstall the version rolled back from', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater();
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0');
    await updater.check();
    await updater.rollback();
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.active?.version).toBe('1.0.0');
  });

  it('rollback() is accepted while an update awaits approval', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater({ policy: { approval: 'ask', checkOnStart: false } });
    await updater.start();
    await updater.check();
    await updater.approve();
    await world.publishVersion('1.1.0');
    await updater.check();
    await updater.approve();
    await world.publishVersion('1.2.0');
    expect(await updater.check()).toMatchObject({ outcome: 'awaiting-approval', version: '1.2.0' });
    expect(await updater.rollback()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    await expectIntact(updater, '1.0.0');
  });
});

describe('failures keep the old version active', () => {
  async function installed(version = '1.0.0', options: Parameters<World['updater']>[0] = {}) {
    await world.publishVersion(version);
    const updater = world.updater(options);
    await updater.start();
    await updater.check();
    return updater;
  }

  it('NETWORK_UNAVAILABLE when the service cannot be reached, deferred and retried after back-off', async () => {
    const clock = new SimulatedClock();
    const updater = await installed('1.0.0', { clock, retry: { maxCheckAttempts: 3, baseDelayMs: 1_000 } });
    await world.publishVersion('1.1.0');
    world.server.fault('/manifest.json', { kind: 'drop-after', bytes: 0, times: 1 });
    const deferred = await updater.check();
    expect(deferred).toMatchObject({ outcome: 'deferred', error: { code: 'NETWORK_UNAVAILABLE' } });
    clock.increment(1_000);
    await waitForSnapshot(updater, (s) => s.matches('active') && s.context.active?.version === '1.1.0');
    await expectIntact(updater, '1.1.0');
  });

  it("SERVICE_UNAVAILABLE on 503 honours Retry-After before the deferred check", async () => {
    const clock = new SimulatedClock();
    const updater = await installed('1.0.0', { clock, retry: { maxCheckAttempts: 3 } });
    world.server.fault('/manifest.json', { kind: 'status', status: 503, retryAfter: '120', times: 1 });
    expect(await updater.check()).toMatchObject({ outcome: 'deferred', error: { code: 'SERVICE_UNAVAILABLE', retryAfterMs: 120_000 } });
    const requests = world.server.requests.length;
    clock.increment(119_000);
    expect(world.server.requests.length).toBe(requests);
    clock.increment(1_000);
    await waitForSnapshot(updater, (s) => s.matches('idle') && s.context.lastResult?.outcome === 'up-to-date');
    expect(world.server.requests.length).toBe(requests + 1);
    await expectIntact(updater, '1.0.0');
  });

  it('gives up after maxCheckAttempts with a failed result', async () => {
    const updater = await installed('1.0.0', { retry: { maxCheckAttempts: 1 } });
    world.server.fault('/manifest.json', { kind: 'status', status: 500 });
    expect(await updater.check()).toMatchObject({ outcome: 'failed', error: { code: 'SERVICE_UNAVAILABLE' } });
    await expectIntact(updater, '1.0.0');
  });

  it('INSUFFICIENT_DISK_SPACE before the first byte when the version cannot fit', async () => {
    const updater = await installed();
    const manifest = JSON.parse(await readFile(join(world.site, 'manifest.json'), 'utf8'));
    manifest.versions.push({ ...manifest.versions[0], version: '1.1.0', files: [{ ...manifest.versions[0].files[0], size: 2 ** 52, url: '1.1.0/model.bin' }] });
    await import('node:fs/promises').then((fs) => fs.writeFile(join(world.site, 'manifest.json'), JSON.stringify(manifest)));
    const before = world.modelRequests().length;
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
    expect(result.error!.message).toMatch(/needs .* MB free/);
    expect(world.modelRequests().length).toBe(before);
    await expectIntact(updater, '1.0.0');
  });

  it('INTEGRITY_MISMATCH on a corrupted file: staged files deleted', async () => {
    const updater = await installed();
    await world.publishVersion('1.1.0');
    world.server.fault('/1.1.0/model.bin', { kind: 'corrupt', times: 1 });
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', version: '1.1.0', error: { code: 'INTEGRITY_MISMATCH' } });
    expect(result.error!.message).toContain('model.bin');
    await expectIntact(updater, '1.0.0');
  });

  it('MANIFEST_INVALID names the field and changes nothing', async () => {
    const updater = await installed();
    const manifest = JSON.parse(await readFile(join(world.site, 'manifest.json'), 'utf8'));
    manifest.versions[0].files[0].sha256 = 'not-a-hash';
    await import('node:fs/promises').then((fs) => fs.writeFile(join(world.site, 'manifest.json'), JSON.stringify(manifest)));
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'MANIFEST_INVALID' } });
    expect(result.error!.message).toContain('versions.0.files.0.sha256');
    await expectIntact(updater, '1.0.0');
  });

  it.each([
    ['MIGRATION_FAILED', { migrate: ({ to }: { to: { version: string } }) => (to.version === '1.1.0' ? Promise.reject(new Error('schema v3 unsupported')) : undefined) }],
    ['LOAD_FAILED', { load: (m: { version: string }) => { if (m.version === '1.1.0') throw new Error('bad weights'); return m.version; } }],
    ['HEALTH_CHECK_FAILED', { load: (m: { version: string }) => m.version, healthCheck: (m: { version: string }) => m.version !== '1.1.0' }],
  ] as const)('%s rolls back to the old version and says why', async (code, loader) => {
    const unloaded: string[] = [];
    const updater = await installed('1.0.0', { loader: { ...loader, unload: (m: { version: string }) => void unloaded.push(m.version) } });
    await world.publishVersion('1.1.0');
    const rolledBack: Array<{ cause: UpdateError | null }> = [];
    updater.on('rolled-back', (e) => rolledBack.push(e));
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', error: { code } });
    expect(updater.getSnapshot().matches('rolledBack')).toBe(true);
    expect(rolledBack[0]!.cause).toBeInstanceOf(UpdateError);
    expect(rolledBack[0]!.cause!.code).toBe(code);
    if (code === 'HEALTH_CHECK_FAILED') expect(unloaded).toEqual(['1.1.0']);
    expect(await readdir(join(world.dir, 'versions'))).toEqual(['1.0.0']);
    await expectIntact(updater, '1.0.0');
  });
});

describe('resumable download', () => {
  it('continues an interrupted download with a Range request instead of starting over', async () => {
    const clock = new SimulatedClock();
    const size = 4_000_000;
    await world.publishVersion('1.0.0', { bytes: size });
    world.server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 3_000_000, times: 1 });
    const updater = world.updater({ clock, retry: { maxDownloadAttempts: 3, baseDelayMs: 5_000 } });
    await updater.start();
    const result = updater.check();
    const waiting = await waitForSnapshot(updater, (s) => s.matches({ downloading: 'retryWait' }));
    expect(waiting.context.error?.code).toBe('NETWORK_UNAVAILABLE');
    clock.increment(5_000);
    expect(await result).toMatchObject({ outcome: 'activated' });
    const [firstTry, secondTry] = world.modelRequests();
    expect(secondTry!.headers.range).toMatch(/^bytes=\d+-$/);
    const resumedAt = Number(/bytes=(\d+)-/.exec(String(secondTry!.headers.range))![1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(firstTry!.bytesSent + secondTry!.bytesSent).toBeLessThan(size * 1.1);
    expect(secondTry!.bytesSent).toBeLessThan(size / 2);
    await expectIntact(updater, '1.0.0');
  });

  it('resumes across a restart of the host process', async () => {
    await world.publishVersion('1.0.0', { bytes: 4_000_000 });
    world.server.fault('/1.0.0/model.bin', { kind: 'drop-after', bytes: 2_500_000, times: 1 });
    const first = world.updater({ clock: new SimulatedClock() });
    await first.start();
    const interrupted = first.check();
    // The dropped connection is retried after a back-off; the process stops before it.
    const waiting = await waitForSnapshot(first, (s) => s.matches({ downloading: 'retryWait' }));
    expect(waiting.context.error).toMatchObject({ code: 'NETWORK_UNAVAILABLE' });
    first.stop();
    await expect(interrupted).rejects.toMatchObject({ code: 'CANCELLED' });
    const second = world.updater();
    await second.start();
    expect(await second.check()).toMatchObject({ outcome: 'activated' });
    expect(world.modelRequests().at(-1)!.bytesSent).toBeLessThan(2_000_000);
    await expectIntact(second, '1.0.0');
  });
});

describe('options', () => {
  it('rejects bad options with INVALID_ARGUMENT before touching the disk', () => {
    expect(() => world.updater({ manifestUrl: 'not a url' })).toThrow(UpdateError);
    try {
      world.updater({ appVersion: 'two' });
    } catch (error) {
      expect(isUpdateError(error) && error.code).toBe('INVALID_ARGUMENT');
      expect((error as Error).message).toContain('appVersion');
    }
  });
});
