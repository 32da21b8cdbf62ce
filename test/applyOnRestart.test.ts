/**
 * Apply on restart (activation 'next-start'): a check downloads, verifies and stages a version and leaves
 * the active model alone; the next start() switches to it (hooks and rollback as usual), applyStaged()
 * switches now, and the CLI stages (`update --stage-only`), applies (`apply`) and shows it (`status`).
 * Real files in a temp folder, a real loopback server, the real CLI.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ModelLoader, ModelRef } from '../src/core/modelRef.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { runCli } from './helpers/runCli.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
  await world.install('1.0.0');
  await world.publishVersion('1.1.0');
});
afterEach(() => world.close());

/** A loader that records every hook call as "hook version"; `unhealthy` versions fail their health check. */
function recordingLoader(unhealthy: string[] = []) {
  const calls: string[] = [];
  const loader: ModelLoader<{ version: string }> = {
    migrate: ({ to }) => void calls.push(`migrate ${to.version}`),
    load: (model: ModelRef) => (calls.push(`load ${model.version}`), { version: model.version }),
    healthCheck: (model) => (calls.push(`healthCheck ${model.version}`), !unhealthy.includes(model.version)),
    unload: (model) => void calls.push(`unload ${model.version}`),
  };
  return { calls, loader };
}

const versionFolder = (version: string) => join(world.dir, 'versions', version);

/** Stages 1.1.0 with a next-start updater, which is stopped again (as the run before a restart). */
async function stage(): Promise<string[]> {
  const updater = world.updater({ activation: 'next-start' });
  await updater.start();
  const downloaded: string[] = [];
  updater.on('update-downloaded', ({ version }) => downloaded.push(version));
  const result = await updater.check();
  expect(result).toMatchObject({ outcome: 'staged', version: '1.1.0', error: null });
  updater.stop();
  return downloaded;
}

describe("activation 'next-start'", () => {
  it('a check stages the version: outcome staged, the active model unchanged, update-downloaded once', async () => {
    const { calls, loader } = recordingLoader();
    const updater = world.updater({ activation: 'next-start', loader });
    await updater.start();
    const downloaded: string[] = [];
    const activated: string[] = [];
    updater.on('update-downloaded', ({ version }) => downloaded.push(version));
    updater.on('activated', ({ version }) => activated.push(version));

    expect(await updater.check()).toMatchObject({ outcome: 'staged', version: '1.1.0', error: null });
    expect(updater.active?.version).toBe('1.0.0');
    expect(updater.model).toEqual({ version: '1.0.0' });
    expect(updater.getSnapshot().context.staged?.version).toBe('1.1.0');
    expect(existsSync(versionFolder('1.1.0'))).toBe(true);
    // Only the active model was loaded: no hook ran on the staged version.
    expect(calls).toEqual(['load 1.0.0']);

    // Checking again finds the same build staged: nothing is downloaded or announced again.
    const requests = world.modelRequests().length;
    expect(await updater.check()).toMatchObject({ outcome: 'staged', version: '1.1.0' });
    expect(world.modelRequests()).toHaveLength(requests);
    expect(downloaded).toEqual(['1.1.0']);
    expect(activated).toEqual([]);

    // gc leaves the staged version alone.
    await updater.gc();
    expect(existsSync(versionFolder('1.1.0'))).toBe(true);
    updater.stop();
  });

  it('the next start() switches to it through migrate, load and healthCheck, journaled as a session', async () => {
    expect(await stage()).toEqual(['1.1.0']);
    const { calls, loader } = recordingLoader();
    const updater = world.updater({ activation: 'next-start', loader });
    const activated: Array<{ version: string; previous: string | null }> = [];
    updater.on('activated', ({ version, previous }) => activated.push({ version, previous }));
    await updater.start();

    expect(updater.active?.version).toBe('1.1.0');
    expect(updater.model).toEqual({ version: '1.1.0' });
    expect(calls).toEqual(['migrate 1.1.0', 'load 1.1.0', 'healthCheck 1.1.0']);
    expect(activated).toEqual([{ version: '1.1.0', previous: '1.0.0' }]);
    const { context } = updater.getSnapshot();
    expect(context.staged ?? null).toBeNull();
    expect(context.session?.trigger).toBe('apply');
    expect(context.retained.map((kept) => kept.version)).toEqual(['1.0.0']);
    expect(updater.log.records().some((record) => record.type === 'staged.applyRequested')).toBe(true);
    // applyStaged() after such a start reports the switch it made.
    expect(await updater.applyStaged()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    updater.stop();

    // One more restart: nothing is staged, nothing switches again.
    const again = recordingLoader();
    const later = world.updater({ activation: 'next-start', loader: again.loader });
    await later.start();
    expect(later.active?.version).toBe('1.1.0');
    expect(again.calls).toEqual(['load 1.1.0']);
    await expect(later.applyStaged()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a failing health check on the restart rolls back: the old model stays active and loaded', async () => {
    await stage();
    const { calls, loader } = recordingLoader(['1.1.0']);
    const updater = world.updater({ activation: 'next-start', loader });
    const rolledBack: Array<string | undefined> = [];
    updater.on('rolled-back', ({ cause }) => rolledBack.push(cause?.code));
    await updater.start();

    expect(updater.active?.version).toBe('1.0.0');
    expect(updater.model).toEqual({ version: '1.0.0' });
    expect(rolledBack).toEqual(['HEALTH_CHECK_FAILED']);
    expect(calls).toEqual(['migrate 1.1.0', 'load 1.1.0', 'healthCheck 1.1.0', 'unload 1.1.0', 'load 1.0.0']);
    expect(updater.getSnapshot().context.staged ?? null).toBeNull();
    expect(await updater.applyStaged()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
  });

  it('applyStaged() switches now, in the running updater', async () => {
    const { calls, loader } = recordingLoader();
    const updater = world.updater({ activation: 'next-start', loader });
    await updater.start();
    await expect(updater.applyStaged()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await updater.check()).toMatchObject({ outcome: 'staged' });
    expect(updater.active?.version).toBe('1.0.0');

    expect(await updater.applyStaged()).toMatchObject({ outcome: 'activated', version: '1.1.0', error: null });
    expect(updater.active?.version).toBe('1.1.0');
    expect(calls).toEqual(['load 1.0.0', 'migrate 1.1.0', 'load 1.1.0', 'healthCheck 1.1.0', 'unload 1.0.0']);
    expect(updater.getSnapshot().context.staged ?? null).toBeNull();
  });

  it('a newer staged version replaces the older one, which gc then removes', async () => {
    const updater = world.updater({ activation: 'next-start' });
    await updater.start();
    const downloaded: string[] = [];
    updater.on('update-downloaded', ({ version }) => downloaded.push(version));
    expect(await updater.check()).toMatchObject({ outcome: 'staged', version: '1.1.0' });
    await world.publishVersion('1.2.0');
    expect(await updater.check()).toMatchObject({ outcome: 'staged', version: '1.2.0' });
    expect(downloaded).toEqual(['1.1.0', '1.2.0']);
    await updater.gc();
    expect(existsSync(versionFolder('1.1.0'))).toBe(false);
    expect(existsSync(versionFolder('1.2.0'))).toBe(true);
    updater.stop();

    const restarted = world.updater({ activation: 'next-start' });
    await restarted.start();
    expect(restarted.active?.version).toBe('1.2.0');
  });

  it('CLI: update --stage-only stages, status shows it, apply switches to it', async () => {
    const dir = world.dir;
    const staged = await runCli(['update', '--manifest', world.manifestUrl, '--dir', dir, '--allow-unsigned', '--app-version', '1.0.0', '--stage-only', '--json']);
    expect(staged.code, staged.stderr).toBe(0);
    expect(staged.json).toMatchObject({ ok: true, outcome: 'staged', active: { version: '1.0.0' }, staged: { version: '1.1.0' } });

    const before = await runCli(['status', '--dir', dir, '--json']);
    expect(before.json).toMatchObject({ active: { version: '1.0.0' }, staged: { version: '1.1.0' } });

    // Staging again does not switch to what the first run staged.
    const again = await runCli(['update', '--manifest', world.manifestUrl, '--dir', dir, '--allow-unsigned', '--app-version', '1.0.0', '--stage-only', '--json']);
    expect(again.json).toMatchObject({ ok: true, outcome: 'staged', active: { version: '1.0.0' }, staged: { version: '1.1.0' } });

    const applied = await runCli(['apply', '--dir', dir, '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.json).toMatchObject({ ok: true, outcome: 'activated', active: { version: '1.1.0' } });

    const after = await runCli(['status', '--dir', dir, '--json']);
    expect(after.json).toMatchObject({ active: { version: '1.1.0' }, staged: null });

    // Nothing staged: apply says so and changes nothing.
    const nothing = await runCli(['apply', '--dir', dir, '--json']);
    expect(nothing.code).not.toBe(0);
    expect(nothing.json).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
  });
});
