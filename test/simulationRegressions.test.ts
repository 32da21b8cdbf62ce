/**
 * Bugs the simulator found, each pinned by the schedule that showed it.
 */
import { describe, expect, it } from 'vitest';
import { isUpdateError } from '../src/core/errors.js';
import { SimulatedWorld } from '../src/testing/index.js';

describe('found by the simulator', () => {
  it('a disk refusing the clean-up after a failed install still restores, and nothing untyped reaches the log (seed 3)', async () => {
    const world = new SimulatedWorld({ updater: { retry: { maxDownloadAttempts: 1 } } });
    world.service.publish('1.0.0', { 'part0.bin': new Uint8Array([1]) });
    void world.boot();
    await world.settle();
    // publish → promote fails with ENOSPC, then the rollback's collectGarbage fails too.
    world.store.failWrites({ code: 'ENOSPC', after: 1, mode: 'from-then-on' });
    world.call('check', (u) => u.check());
    await world.settle();
    const snapshot = world.updater!.getSnapshot();
    expect(snapshot.matches('rolledBack')).toBe(true);
    expect(snapshot.context.lastResult).toMatchObject({ outcome: 'rolled-back', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
    const codes = world.logDisk.records.flatMap((r) => ((r.data as { error?: { code: string } }).error ? [(r.data as { error: { code: string } }).error.code] : []));
    expect(codes).not.toContain('UNKNOWN');
  });

  it('gc() on a failing disk rejects with an UpdateError, not the raw fs error (seed 5)', async () => {
    const world = new SimulatedWorld();
    void world.boot();
    await world.settle();
    world.store.failWrites({ code: 'EIO', after: 0, mode: 'once' });
    const error = await world.updater!.gc().catch((e: unknown) => e);
    expect(isUpdateError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringContaining('EIO') });
  });
});

describe('found by the simulator: gc() during an update', () => {
  it('keeps the version being installed: the switch never points at a removed folder (seed 4)', async () => {
    // No load hook reads the files, so nothing but the store notices a missing version.
    const world = new SimulatedWorld({ hooks: { load: (m) => m.version } });
    void world.boot();
    await world.settle();
    world.loader.inject({ hook: 'migrate', effect: 'stall', repeat: 'once' });
    world.service.publish('1.0.0', { 'part0.bin': new Uint8Array([1]) });
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.state()).toBe('migrating.migratingData');
    world.call('gc', async (u) => (await u.gc(), { sessionId: 'gc', outcome: 'up-to-date', version: null, error: null }));
    await world.settle();
    world.heal();
    await world.settle();
    const pointer = await world.store.readPointer();
    expect(pointer?.active.version).toBe('1.0.0');
    expect(world.store.verifyVersion(pointer!.active)).toBeNull();
  });
});

describe('found by the simulator: restarts in the middle of a switch or a rollback', () => {
  async function installed(options: ConstructorParameters<typeof SimulatedWorld>[0] = {}) {
    const world = new SimulatedWorld({ hooks: { load: (m) => m.version }, ...options });
    void world.boot();
    await world.settle();
    for (const version of ['1.0.0', '2.0.0']) {
      world.service.publish(version, { 'part0.bin': new TextEncoder().encode(version) });
      world.call('check', (u) => u.check());
      await world.settle();
    }
    return world;
  }

  it('a restart during migrating.switching loads the version the switch makes active (seed 2)', async () => {
    const world = await installed();
    world.service.publish('3.0.0', { 'part0.bin': new TextEncoder().encode('3.0.0') });
    // The pointer is switched, then the host's unload of the old version hangs: the process dies there.
    world.loader.inject({ hook: 'unload', effect: 'stall', repeat: 'once' });
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.state()).toBe('migrating.switching');
    world.crash({ dropUnsynced: true });
    void world.boot();
    await world.settle();
    expect(world.updater!.active?.version).toBe('3.0.0');
    expect(world.updater!.model).toMatchObject({ version: '3.0.0' });
    expect([...world.loader.loaded]).toEqual(['3.0.0']);
  });

  it('a probation rollback whose target cannot load leaves the pointer where the chart says (seed 8)', async () => {
    const world = await installed({ hooks: { load: (m) => m.version }, updater: { probation: { maxFailedStarts: 1 } } });
    expect(world.updater!.getSnapshot().context.probation).toMatchObject({ version: '2.0.0' });
    world.loader.inject({ hook: 'load', effect: 'throw', repeat: 'from-then-on' });
    for (let start = 0; start < 2; start++) {
      world.crash({ dropUnsynced: false });
      void world.boot();
      await world.settle();
    }
    const snapshot = world.updater!.getSnapshot();
    expect(snapshot.context.lastResult).toMatchObject({ outcome: 'failed', error: { code: 'LOAD_FAILED' } });
    expect((await world.store.readPointer())?.active.version).toBe(snapshot.context.active?.version);
  });
});

describe('found by the simulator: retention after a manual rollback', () => {
  it('rolling back to the oldest version keeps the others within maxRetainedBytes', async () => {
    // Found by simulate()'s default search: update, update, update, rollback(oldest).
    const world = new SimulatedWorld({ hooks: { load: (m) => m.version }, updater: { keepVersions: 3, maxRetainedBytes: 8_000 } });
    void world.boot();
    await world.settle();
    const sizes: Record<string, number> = { '1.0.0': 1, '2.0.0': 8_001, '3.0.0': 1 };
    for (const [version, size] of Object.entries(sizes)) {
      world.service.publish(version, { 'part0.bin': new Uint8Array(size).fill(Number(version[0])) });
      world.call('check', (u) => u.check());
      await world.settle();
    }
    expect(world.updater!.getSnapshot().context.retained.map((v) => v.version)).toEqual(['2.0.0', '1.0.0']);
    world.call('rollback', (u) => u.rollback('1.0.0'));
    await world.settle();
    const { active, retained } = world.updater!.getSnapshot().context;
    expect(active?.version).toBe('1.0.0');
    // 3.0.0 is the version just left (always kept); 2.0.0's 8,001 bytes are over the budget.
    expect(retained.map((v) => v.version)).toEqual(['3.0.0']);
    expect((await world.store.readPointer())?.retained.map((v) => v.version)).toEqual(['3.0.0']);
  });
});
