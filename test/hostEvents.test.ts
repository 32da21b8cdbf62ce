/**
 * Replay is not news: host events report what the running updater does now. A restart replays the log
 * (and folds its recovery events) without emitting the outcomes of earlier runs again; the live path
 * emits each outcome exactly once. Real folders, a real loopback HTTP server.
 */
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelUpdater, type ModelUpdater, type UpdaterEvents } from '../src/index.js';
import { createWorld, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

type Heard = Array<[keyof UpdaterEvents, unknown]>;

/** Every host event the updater emits, in order (progress left out: it is sampled). */
function listen(updater: ModelUpdater<any>): Heard {
  const heard: Heard = [];
  const names: Array<keyof UpdaterEvents> = ['state', 'update-available', 'update-not-available', 'activated', 'rolled-back', 'error'];
  for (const name of names) updater.on(name, (payload) => heard.push([name, payload]));
  return heard;
}

const outcomes = (heard: Heard) => heard.filter(([name]) => name === 'activated' || name === 'rolled-back' || name === 'error');

/** A loader whose health check fails for 1.1.0: its update rolls back to 1.0.0. */
const healthFailsFor110 = { load: (m: { version: string }) => m.version, healthCheck: (m: { version: string }) => m.version !== '1.1.0' };

/** Starts a new updater on the same folder three times, as three host restarts would. */
async function restartThreeTimes(options: Parameters<World['updater']>[0] = {}) {
  const heardPerRestart: Heard[] = [];
  for (let restart = 0; restart < 3; restart++) {
    const updater = world.updater(options);
    const heard = listen(updater);
    await updater.start();
    // Whatever start() set off has run by the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    heardPerRestart.push(heard);
    updater.stop();
  }
  return heardPerRestart;
}

describe('restarts emit no old outcome', () => {
  it('an install whose last outcome was a rollback (failed health check): three restarts emit no activated, rolled-back or error', async () => {
    await world.publishVersion('1.0.0');
    const first = world.updater({ loader: healthFailsFor110 });
    const heard = listen(first);
    await first.start();
    expect(await first.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    await world.publishVersion('1.1.0');
    expect(await first.check()).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', error: { code: 'HEALTH_CHECK_FAILED' } });
    first.stop();

    // Live: each outcome exactly once.
    expect(outcomes(heard).map(([name]) => name)).toEqual(['activated', 'rolled-back']);
    expect(heard.filter(([name]) => name === 'update-available').map(([, e]) => (e as { version: string }).version)).toEqual(['1.0.0', '1.1.0']);
    const [, rolledBack] = outcomes(heard)[1]!;
    expect(rolledBack).toMatchObject({ version: '1.0.0', from: '1.1.0', cause: { code: 'HEALTH_CHECK_FAILED' } });

    for (const restarted of await restartThreeTimes({ loader: healthFailsFor110 })) expect(restarted).toEqual([]);

    // The restarted updater still reports what happens now: 1.1.0's build is quarantined, so up to date.
    const again = world.updater({ loader: healthFailsFor110 });
    const now = listen(again);
    await again.start();
    expect(await again.check()).toMatchObject({ outcome: 'up-to-date' });
    // An outcome is heard as its transition is taken, before the state it leads to.
    expect(now).toEqual([
      ['state', { state: 'checking' }],
      ['update-not-available', expect.anything()],
      ['state', { state: 'idle.ready' }],
    ]);
    expect(again.active?.version).toBe('1.0.0');
  });

  it('an install whose last outcome was rollback(): three restarts emit nothing, the live rollback emitted once', async () => {
    await world.install('1.0.0');
    await world.publishVersion('1.1.0');
    const first = world.updater();
    const heard = listen(first);
    await first.start();
    expect(await first.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(await first.rollback()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    first.stop();
    expect(outcomes(heard)).toEqual([
      ['activated', expect.objectContaining({ version: '1.1.0', previous: '1.0.0' })],
      ['rolled-back', { version: '1.0.0', from: '1.1.0', cause: null }],
    ]);

    for (const restarted of await restartThreeTimes()) expect(restarted).toEqual([]);
  });

  it('an install whose last outcome was an activation: three restarts emit nothing, the live activation emitted once with its model', async () => {
    await world.publishVersion('1.0.0');
    const first = world.updater();
    const heard = listen(first);
    await first.start();
    await first.check();
    first.stop();
    expect(outcomes(heard)).toEqual([['activated', expect.objectContaining({ version: '1.0.0', previous: null, model: expect.objectContaining({ version: '1.0.0' }) })]]);

    for (const restarted of await restartThreeTimes()) expect(restarted).toEqual([]);
  });

  it('an install whose last session failed: the error is emitted once, live, and not on the three restarts', async () => {
    await world.install('1.0.0');
    await world.publishVersion('1.1.0');
    world.server.fault('/1.1.0/model.bin', { kind: 'corrupt', times: 1 });
    const first = world.updater();
    const heard = listen(first);
    await first.start();
    expect(await first.check()).toMatchObject({ outcome: 'failed', error: { code: 'INTEGRITY_MISMATCH' } });
    first.stop();
    expect(outcomes(heard).map(([name, payload]) => [name, (payload as { code: string }).code])).toEqual([['error', 'INTEGRITY_MISMATCH']]);

    for (const restarted of await restartThreeTimes()) expect(restarted).toEqual([]);
  });
  it('an update cut off before its switch is undone by the next start, which says so once; the starts after it say nothing', async () => {
    await world.install('1.0.0');
    await world.publishVersion('1.1.0');
    const first = world.updater({ loader: { load: (m) => (m.version === '1.1.0' ? new Promise(() => {}) : m.version) } });
    await first.start();
    const cut = first.check().catch((error: unknown) => error);
    await new Promise<void>((resolve) => {
      const sub = first.subscribe((s) => s.matches({ migrating: 'loading' }) && (sub.unsubscribe(), resolve()));
    });
    first.stop(); // the process dies while the host loads 1.1.0
    expect(await cut).toMatchObject({ code: 'CANCELLED' });

    // The undo happens in this run: news, once.
    const second = world.updater();
    const heard = listen(second);
    await second.start();
    expect(second.getSnapshot().matches('rolledBack')).toBe(true);
    expect(outcomes(heard)).toEqual([['rolled-back', { version: '1.0.0', from: '1.1.0', cause: expect.objectContaining({ code: 'INTERRUPTED' }) }]]);
    second.stop();

    for (const restarted of await restartThreeTimes()) expect(restarted).toEqual([]);
  });

  it('the golden 0.1.0 install (its last outcome a rollback() to 1.0.0) opens three times in rolledBack without a word', async () => {
    const golden = 'test/golden/v0.1.0';
    await cp(join(golden, 'install'), world.dir, { recursive: true });
    const trustedKeys = [(await readFile(join(golden, 'release.pub'), 'utf8')).trim()];
    for (let restart = 0; restart < 3; restart++) {
      const updater = createModelUpdater({ dir: world.dir, trustedKeys, appVersion: '1.0.0' });
      const heard = listen(updater);
      await updater.start();
      await new Promise((resolve) => setImmediate(resolve));
      expect(updater.getSnapshot().value).toBe('rolledBack');
      expect(updater.active?.version).toBe('1.0.0');
      updater.stop();
      expect(heard).toEqual([]);
    }
  });
});

describe('the updater as an XState actor', () => {
  it('getSnapshot() works before start(), the actor is reachable once started, and subscribe() returns { unsubscribe }', async () => {
    await world.install('1.0.0');
    const updater = world.updater();
    expect(updater.actor).toBeUndefined();
    const before = updater.getSnapshot();
    expect(before.value).toEqual({ idle: 'ready' });
    expect(before.hasTag('settled')).toBe(true);
    expect(before.context.active).toBeNull();

    await updater.start();
    expect(updater.actor?.getSnapshot()).toBe(updater.getSnapshot());
    expect(updater.getSnapshot().context.active?.version).toBe('1.0.0');

    const seen: string[] = [];
    const subscription = updater.subscribe((snapshot) => seen.push(JSON.stringify(snapshot.value)));
    const off = updater.on('update-not-available', () => seen.push('news'));
    expect(typeof subscription.unsubscribe).toBe('function');
    await updater.check();
    expect(seen.length).toBeGreaterThan(0);
    subscription.unsubscribe();
    off.unsubscribe();
    const count = seen.length;
    await updater.check();
    expect(seen).toHaveLength(count);
    // Calling the subscription itself still ends it, as before.
    const again = updater.subscribe(() => seen.push('again'));
    again();
    await updater.check();
    expect(seen).toHaveLength(count);

    updater.stop();
    expect(updater.actor).toBeUndefined();
    expect(updater.getSnapshot().context.active?.version).toBe('1.0.0');
  });
});
