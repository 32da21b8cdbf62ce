import { describe, expect, it } from 'vitest';
import { SimulatedWorld } from '../src/testing/index.js';
import { missingBytes } from '../src/core/actors/checkDiskSpace.js';

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('the simulated world', () => {
  it('the service answers with ETag / 304, 503 + Retry-After, and refuses when offline', async () => {
    const world = new SimulatedWorld();
    world.service.publish('1.0.0', { 'model.bin': bytes(10, 1) });
    const first = await world.service.fetch(world.service.manifestUrl);
    expect(first.status).toBe(200);
    const again = await world.service.fetch(world.service.manifestUrl, { headers: { 'if-none-match': first.headers.get('etag')! } });
    expect(again.status).toBe(304);
    world.service.faults = { unavailable: { retryAfterMs: 2500 } };
    const busy = await world.service.fetch(world.service.manifestUrl);
    expect([busy.status, busy.headers.get('retry-after')]).toEqual([503, '3']);
    world.service.faults = { offline: true };
    await expect(world.service.fetch(world.service.manifestUrl)).rejects.toThrow(TypeError);
  });

  it('updates, defers on 503 until the simulated clock reaches Retry-After, and resumes a stalled download after a crash', async () => {
    const world = new SimulatedWorld({ hooks: { load: (m) => m.version } });
    world.service.publish('1.0.0', { 'model.bin': bytes(9000, 1) });
    void world.boot();
    await world.settle();
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.updater!.active?.version).toBe('1.0.0');

    world.service.publish('1.1.0', { 'model.bin': bytes(9000, 2) });
    world.service.faults = { unavailable: { retryAfterMs: 5000 } };
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.state()).toBe('idle.deferred');
    world.service.faults = {};
    world.clock.increment(4999);
    await world.settle();
    expect(world.state()).toBe('idle.deferred');
    world.clock.increment(1);
    await world.settle();
    expect(world.updater!.active?.version).toBe('1.1.0');

    world.service.publish('1.2.0', { 'model.bin': bytes(9000, 3) });
    world.service.faults = { stall: true };
    world.call('check', (u) => u.check());
    await world.settle();
    expect([world.state(), world.process.stalls]).toEqual(['downloading.fetching', 1]);
    world.crash({ dropUnsynced: true });
    void world.boot();
    world.heal();
    await world.settle();
    expect(world.updater!.active?.version).toBe('1.2.0');
    expect(world.errors.map((e) => (e.error as { code: string }).code)).toEqual(['SERVICE_UNAVAILABLE']);
  });

  it('a power cut drops what was written but not synced: a partial download and an unsynced log record', async () => {
    const world = new SimulatedWorld({ updater: { retry: { maxDownloadAttempts: 1 } } });
    world.service.publish('1.0.0', { 'model.bin': bytes(9000, 1) });
    world.service.faults = { truncateAfter: 5000 };
    void world.boot();
    await world.settle();
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.store.hasUnsynced()).toBe(true);
    expect(await missingBytes(world.store, world.store.staging, '1.0.0', [{ path: 'model.bin', size: 9000, sha256: 'x'.repeat(64) }])).toBe(4000);

    world.logDisk.failAppends({ after: 0, mode: 'unsynced' });
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.halted).toBe(true);
    const written = world.logDisk.records.length;
    world.crash({ dropUnsynced: true });
    expect(world.logDisk.records.length).toBe(written - 1);
    expect(world.store.hasUnsynced()).toBe(false);
    expect(await missingBytes(world.store, world.store.staging, '1.0.0', [{ path: 'model.bin', size: 9000, sha256: 'x'.repeat(64) }])).toBe(9000);
  });
});

describe('downloads in the simulator run the real algorithm', () => {
  it('a truncated body is resumed with a Range request guarded by If-Range, and the file verifies', async () => {
    const world = new SimulatedWorld({ updater: { retry: { maxDownloadAttempts: 1 } } });
    const content = bytes(9000, 3);
    world.service.publish('1.0.0', { 'model.bin': content });
    world.service.faults = { truncateAfter: 5000 };
    void world.boot();
    await world.settle();
    world.call('check', (u) => u.check());
    await world.settle();
    expect(world.results.at(-1)?.result).toMatchObject({ outcome: 'failed', error: { code: 'NETWORK_UNAVAILABLE' } });
    expect(await world.store.staging.size({ version: '1.0.0', path: 'model.bin' })).toBe(5000);

    world.heal();
    world.call('check', (u) => u.check());
    await world.settle();

    expect(world.updater!.active?.version).toBe('1.0.0');
    expect(world.store.readVersion('1.0.0')?.get('model.bin')).toEqual(content);
    const files = world.service.requests.filter((r) => r.kind === 'file');
    expect(files.map((r) => r.offset)).toEqual([0, 5000]);
    expect(files[1]?.ifRange).toMatch(/^"[0-9a-f]{16}"$/);
  });
});
