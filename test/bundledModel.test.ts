import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelUpdater, readActive, type ModelRef } from '../src/index.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { freePort } from './helpers/freePort.js';
import { runCli } from './helpers/runCli.js';
import { startReader } from './helpers/readerProcess.js';

let world: World;
let bundledPath: string;
beforeEach(async () => {
  world = await createWorld();
  bundledPath = join(world.root, 'app', 'resources', 'model');
  await mkdir(join(bundledPath, 'tokenizer'), { recursive: true });
  await writeFile(join(bundledPath, 'model.bin'), randomBytes(64 * 1024));
  await writeFile(join(bundledPath, 'tokenizer', 'vocab.txt'), 'a\nb\nc\n');
});
afterEach(async () => {
  await world.close();
});

const bundled = () => ({ version: '1.0.0', path: bundledPath });
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Every entry of the bundled folder with its bytes and mtime: what must never change. */
async function bundledState() {
  const entries = await readdir(bundledPath, { recursive: true, withFileTypes: true });
  const state: Record<string, { sha256?: string; mtimeMs: number }> = {};
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    state[path] = { mtimeMs: (await stat(path)).mtimeMs, ...(entry.isFile() ? { sha256: sha256(await readFile(path)) } : {}) };
  }
  state[bundledPath] = { mtimeMs: (await stat(bundledPath)).mtimeMs };
  return state;
}

describe('bundled: the model shipped in the app', () => {
  it('is validated: a missing path, a path overlapping the model folder, a bad version are INVALID_ARGUMENT', () => {
    const make = (option: unknown) => () => createModelUpdater({ dir: world.dir, bundled: option as never });
    expect(make({ version: '1.0.0' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('bundled.path') }));
    expect(make({ version: '1.0.0', path: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(make({ version: '1.0.0', path: join(world.dir, 'shipped') })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('overlaps') }));
    expect(make({ version: '1.0.0', path: world.root })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('overlaps') }));
    expect(make({ version: 'v1', path: bundledPath })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('semver') }));
    expect(make({ path: bundledPath })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a missing bundled folder fails start() with INVALID_ARGUMENT and installs nothing', async () => {
    const updater = world.updater({ bundled: { version: '1.0.0', path: join(world.root, 'app', 'nothing') } });
    await expect(updater.start()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await readdir(world.dir)).not.toContain('active.json');
  });

  it('first start offline: the bundled model is active in place, then updates, gc, rollback and a failed update never touch it', async () => {
    const before = await bundledState();
    const loaded: ModelRef[] = [];
    const options = {
      bundled: bundled(),
      loader: {
        load: (model: ModelRef) => (loaded.push(model), model.version),
        healthCheck: (model: ModelRef) => model.version !== '1.3.0',
      },
    };
    // Offline: nothing listens at the service's address.
    const offline = world.updater({ ...options, manifestUrl: `http://127.0.0.1:${await freePort()}/manifest.json` });
    await offline.start();
    expect(offline.active).toMatchObject({ version: '1.0.0', path: bundledPath, bundled: true });
    expect(await offline.check()).toMatchObject({ outcome: 'deferred', error: { code: 'NETWORK_UNAVAILABLE' } });
    expect(offline.active).toMatchObject({ version: '1.0.0', path: bundledPath, bundled: true });
    offline.stop();
    loaded.length = 0;

    const updater = world.updater(options);
    await updater.start();
    const files = [
      { path: 'model.bin', size: 64 * 1024, sha256: before[join(bundledPath, 'model.bin')]!.sha256 },
      { path: 'tokenizer/vocab.txt', size: 6, sha256: before[join(bundledPath, 'tokenizer', 'vocab.txt')]!.sha256 },
    ];
    expect(updater.active).toEqual({ version: '1.0.0', path: bundledPath, files, bundled: true });
    expect(loaded).toEqual([updater.active]);
    expect(updater.model).toBe('1.0.0');
    expect(await readdir(join(world.dir, 'versions'))).toEqual([]); // never copied in
    // A reader in another process gets it too, marked bundled.
    const reader = await startReader(world.dir);
    expect(reader.first).toMatchObject({ version: '1.0.0', path: bundledPath, files, bundled: true });
    await reader.release();

    // Later updates replace it as active; it stays retained, beyond keepVersions (2) and the byte budget.
    await world.publishVersion('1.1.0');
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await world.publishVersion('1.2.0');
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.2.0' });
    expect(updater.getSnapshot().context.retained.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    expect(await bundledState()).toEqual(before);

    await updater.gc();
    expect(await bundledState()).toEqual(before);

    // status (CLI, another process) shows it, marked bundled, from what the pointer recorded.
    const status = await runCli(['status', '--dir', world.dir, '--json']);
    expect(status.json.retained).toEqual([
      expect.objectContaining({ version: '1.1.0', path: join(world.dir, 'versions', '1.1.0') }),
      { version: '1.0.0', path: bundledPath, files, bundled: true },
    ]);

    // Rollback returns to it, loaded from the bundle.
    expect(await updater.rollback('1.0.0')).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    expect(updater.active).toEqual({ version: '1.0.0', path: bundledPath, files, bundled: true });
    expect(loaded.at(-1)).toEqual(updater.active);
    expect(await bundledState()).toEqual(before);

    // A failed update goes back to it.
    await world.publishVersion('1.3.0');
    expect(await updater.check()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
    expect(updater.active).toEqual({ version: '1.0.0', path: bundledPath, files, bundled: true });
    expect(await bundledState()).toEqual(before);
    await updater.gc();
    expect(await bundledState()).toEqual(before);

    // A later start (without the option, as the CLI does) knows it from the pointer.
    updater.stop();
    const again = world.updater();
    await again.start();
    expect(again.active).toEqual({ version: '1.0.0', path: bundledPath, files, bundled: true });
    const held = await readActive({ dir: world.dir });
    expect(held).toMatchObject({ version: '1.0.0', path: bundledPath, bundled: true });
    await held.release();
    expect((await runCli(['status', '--dir', world.dir, '--json'])).json.active).toEqual({ version: '1.0.0', path: bundledPath, files, bundled: true });
  });

  it('is not adopted over an installed version', async () => {
    await world.install('2.0.0');
    const updater = world.updater({ bundled: bundled() });
    await updater.start();
    expect(updater.active).toMatchObject({ version: '2.0.0', path: join(world.dir, 'versions', '2.0.0') });
    expect(updater.getSnapshot().context.retained).toEqual([]);
  });
});
