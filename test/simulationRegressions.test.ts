/**
 * Bugs the simulator found, each pinned by the schedule that showed it.
 */
import { describe, expect, it } from 'vitest';
import { isUpdateError } from '../src/errors.js';
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
