import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { approvalFor, isRolledOutTo, rolloutBucket } from '../machines/versionPolicy.js';
import { DEFAULT_SCHEDULE, nextCheckDelay } from '../src/core/schedule.js';
import { createWorld, waitForSnapshot, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});


/** Sets a field of one version in the published manifest (as an operator editing the rollout would). */
async function editVersion(version: string, fields: Record<string, unknown>) {
  const path = join(world.site, 'manifest.json');
  const manifest = JSON.parse(await readFile(path, 'utf8'));
  Object.assign(manifest.versions.find((v: { version: string }) => v.version === version), fields);
  await writeFile(path, JSON.stringify(manifest));
}

describe('approval', () => {
  it('follows a rule per semver level', async () => {
    const policy = { approval: { patch: 'auto', minor: 'auto', major: 'ask' } as const, checkOnStart: false };
    expect(approvalFor(policy.approval, '1.4.2', '1.4.3')).toBe('auto');
    expect(approvalFor(policy.approval, '1.4.2', '2.0.0-rc.1')).toBe('ask');
    await world.publishVersion('1.0.0');
    const updater = world.updater({ policy: { ...policy, approval: { ...policy.approval, major: 'auto' } } });
    await updater.start();
    await updater.check();
    updater.stop();

    const asking = world.updater({ policy });
    await asking.start();
    await world.publishVersion('1.0.1');
    expect(await asking.check()).toMatchObject({ outcome: 'activated', version: '1.0.1' });
    await world.publishVersion('2.0.0');
    expect(await asking.check()).toMatchObject({ outcome: 'awaiting-approval', version: '2.0.0' });
    expect(await asking.approve()).toMatchObject({ outcome: 'activated', version: '2.0.0' });
  });
});

describe('skip and pin', () => {
  it('never offers a skipped version or one outside the pin', async () => {
    await world.publishVersion('1.0.0');
    await world.publishVersion('1.0.1');
    await world.publishVersion('1.1.0');
    const updater = world.updater({ policy: { skip: ['1.0.1'], pin: '~1.0.0', checkOnStart: false } });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
  });

  it('rejects a bad policy with INVALID_ARGUMENT naming the field', () => {
    expect(() => world.updater({ policy: { pin: 'not a range' } })).toThrow(/policy\.pin/);
    expect(() => world.updater({ policy: { approval: { major: 'maybe' } as never } })).toThrow(/policy\.approval/);
  });
});

describe('staged rollout', () => {
  it('buckets are stable, uniform, and a growing fraction never takes a version away', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `install-${i}`);
    const share = (fraction: number) => ids.filter((id) => isRolledOutTo({ version: '2.0.0', rollout: fraction }, id)).length / ids.length;
    expect(Math.abs(share(0.1) - 0.1)).toBeLessThan(0.01);
    const at10 = new Set(ids.filter((id) => isRolledOutTo({ version: '2.0.0', rollout: 0.1 }, id)));
    const at50 = new Set(ids.filter((id) => isRolledOutTo({ version: '2.0.0', rollout: 0.5 }, id)));
    expect([...at10].every((id) => at50.has(id))).toBe(true);
    expect(rolloutBucket('a', '2.0.0')).toBe(rolloutBucket('a', '2.0.0'));
    expect(isRolledOutTo({ version: '2.0.0', rollout: 0.5 }, null)).toBe(false);
  });

  it('offers a version once the rollout reaches this install, whose id persists in dir', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater();
    await updater.start();
    await updater.check();
    const id = (await readFile(join(world.dir, 'install-id'), 'utf8')).trim();
    const bucket = rolloutBucket(id, '1.1.0');
    await world.publishVersion('1.1.0');
    await editVersion('1.1.0', { rollout: bucket * 0.99 });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    await editVersion('1.1.0', { rollout: Math.min(1, bucket + 0.001) });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    updater.stop();
    const again = world.updater();
    await again.start();
    expect(again.getSnapshot().context.config.installId).toBe(id);
  });
});

describe('download conditions', () => {
  it('waits in a visible state while a condition is not met, and goes on when told it changed', async () => {
    await world.publishVersion('1.0.0');
    let unmetered = false;
    const clock = new SimulatedClock();
    const updater = world.updater({ clock, policy: { checkOnStart: false, conditionsPollMs: 30_000, downloadWhen: { unmetered: () => unmetered, charging: () => true } } });
    await updater.start();
    const result = updater.check();
    const waiting = await waitForSnapshot(updater, (s) => s.matches({ downloading: 'waitingForConditions' }));
    expect(waiting.context.blockedBy).toEqual(['unmetered']);
    clock.increment(30_000); // polls again: still metered
    await waitForSnapshot(updater, (s) => s.matches({ downloading: 'waitingForConditions' }));
    expect(world.modelRequests()).toHaveLength(0);
    unmetered = true;
    updater.conditionsChanged();
    expect(await result).toMatchObject({ outcome: 'activated' });
    expect(updater.getSnapshot().context.blockedBy).toBeNull();
  });
});

describe('schedule', () => {
  it('checks periodically with jitter, and backs off after failures honouring Retry-After', async () => {
    expect(nextCheckDelay(DEFAULT_SCHEDULE, { failures: 0 }, 0.5)).toBe(DEFAULT_SCHEDULE.intervalMs);
    expect(86_400_000 % DEFAULT_SCHEDULE.intervalMs).not.toBe(0);
    expect(nextCheckDelay(DEFAULT_SCHEDULE, { failures: 3 }, 0.5)).toBe(0.5 * 4 * DEFAULT_SCHEDULE.failureBaseMs);
    expect(nextCheckDelay(DEFAULT_SCHEDULE, { failures: 1, retryAfterMs: 600_000 }, 0.1)).toBe(600_000);

    await world.publishVersion('1.0.0');
    const clock = new SimulatedClock();
    const schedule = { intervalMs: 3_600_000, spread: 0.1, failureBaseMs: 60_000, failureMaxMs: 3_600_000 };
    const updater = world.updater({ clock, random: () => 0.5, policy: { checkOnStart: true, schedule } });
    await updater.start();
    await waitForSnapshot(updater, (s) => s.context.lastResult?.outcome === 'activated');
    const checks = () => updater.log.records().filter((r) => r.type === 'check.requested').map((r) => r.data.trigger);
    expect(checks()).toEqual(['startup']);
    clock.increment(3_599_999);
    expect(checks()).toEqual(['startup']);
    const manifestRequests = () => world.server.requests.filter((r) => r.path.endsWith('manifest.json')).length;
    // A 503 defers the scheduled check; the deferred one waits for the service's Retry-After (the chart's timer, journaled).
    world.server.fault('/manifest.json', { kind: 'status', status: 503, retryAfter: '300', times: 1 });
    clock.increment(1);
    await waitForSnapshot(updater, (s) => s.matches({ idle: 'deferred' }));
    expect(checks()).toEqual(['startup', 'scheduled']);
    const requested = manifestRequests();
    clock.increment(299_999);
    expect(manifestRequests()).toBe(requested);
    clock.increment(1);
    await waitForSnapshot(updater, (s) => s.context.lastResult?.outcome === 'up-to-date');
    expect(manifestRequests()).toBe(requested + 1);
    // A failed session (the service refuses): the next check waits for the failure back-off, not the interval.
    world.server.fault('/manifest.json', { kind: 'status', status: 404, times: 1 });
    clock.increment(3_600_000);
    await waitForSnapshot(updater, (s) => s.context.lastResult?.outcome === 'failed');
    expect(checks()).toEqual(['startup', 'scheduled', 'scheduled']);
    clock.increment(29_999);
    expect(checks()).toHaveLength(3);
    clock.increment(1);
    await waitForSnapshot(updater, (s) => s.context.lastResult?.outcome === 'up-to-date' && checks().length === 4);
  });

  it('by default a fleet that starts together spreads its first check over one interval; a folder with no model checks at once', async () => {
    await world.publishVersion('1.0.0');
    // The folder's log is shared by the updaters below: count the start-up checks of the current one.
    let earlier = 0;
    const allStartupChecks = (updater: ReturnType<World['updater']>) => updater.log.records().filter((r) => r.type === 'check.requested' && r.data.trigger === 'startup').length;
    const startupChecks = (updater: ReturnType<World['updater']>) => allStartupChecks(updater) - earlier;
    /** The session of the latest CHECK has ended (lastResult alone may be an earlier updater's, restored from the log). */
    const settled = (updater: ReturnType<World['updater']>) =>
      waitForSnapshot(updater, (s) => s.context.lastResult !== null && s.context.lastResult.sessionId === updater.log.records().filter((r) => r.type === 'check.requested').at(-1)?.session);
    const stop = (updater: ReturnType<World['updater']>) => {
      earlier = allStartupChecks(updater);
      updater.stop();
    };
    // Nothing installed yet: the host has no model to run, so the start-up check does not wait.
    const fresh = world.updater({ clock: new SimulatedClock(), random: () => 0.5, policy: {} });
    await fresh.start();
    expect((await settled(fresh)).context.lastResult?.outcome).toBe('activated');
    stop(fresh);

    // Installed: the first check lands at random within one interval (here half of it).
    const clock = new SimulatedClock();
    const installed = world.updater({ clock, random: () => 0.5, policy: {} });
    await installed.start();
    expect(startupChecks(installed)).toBe(0);
    clock.increment(DEFAULT_SCHEDULE.intervalMs / 2 - 1);
    expect(startupChecks(installed)).toBe(0);
    clock.increment(1);
    expect(startupChecks(installed)).toBe(1);
    await settled(installed);
    stop(installed);
    expect(DEFAULT_SCHEDULE.startupSpreadMs).toBe(DEFAULT_SCHEDULE.intervalMs);

    // The host's explicit choice wins: checkOnStart: true checks at once, an explicit spread is waited.
    const eager = world.updater({ clock: new SimulatedClock(), random: () => 0.5, policy: { checkOnStart: true } });
    await eager.start();
    expect(startupChecks(eager)).toBe(1);
    await settled(eager);
    stop(eager);
    const spreadClock = new SimulatedClock();
    const spread = world.updater({ clock: spreadClock, random: () => 0.5, policy: { checkOnStart: true, schedule: { startupSpreadMs: 60_000 } } });
    await spread.start();
    spreadClock.increment(29_999);
    expect(startupChecks(spread)).toBe(0);
    spreadClock.increment(1);
    expect(startupChecks(spread)).toBe(1);
    expect((await settled(spread)).context.lastResult?.outcome).toBe('up-to-date');
  });
});
