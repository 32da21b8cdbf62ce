import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import { readActive } from '../src/index.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { startReader, type ReaderProcess } from './helpers/readerProcess.js';

let world: World;
const readers: ReaderProcess[] = [];
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  for (const reader of readers.splice(0)) if (reader.child.exitCode === null && reader.child.signalCode === null) await reader.kill();
  await world.close();
});

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const versionsOnDisk = async () => (await readdir(join(world.dir, 'versions'))).sort();

/** Two more updates with the default retention (2 versions): the first version is dropped by both. */
async function updateTwice(updater: ReturnType<World['updater']>) {
  await world.publishVersion('1.1.0');
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  await world.publishVersion('1.2.0');
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.2.0' });
}

describe('readActive: readers beside the updater', () => {
  it('is exported from the package root', () => {
    expect(root.readActive).toBe(readActive);
  });

  it('with nothing installed, rejects with NOT_INSTALLED and writes nothing', async () => {
    await mkdir(world.dir, { recursive: true });
    const error = await readActive({ dir: world.dir }).catch((e: unknown) => e);
    expect(root.isUpdateError(error) && error.code).toBe('NOT_INSTALLED');
    expect((error as Error).message).toContain(world.dir);
    expect(await readdir(world.dir)).toEqual([]);
  });

  it('gives another process the active version while the updater runs and holds the lock', async () => {
    await world.install('1.0.0');
    const updater = world.updater();
    await updater.start();
    // The second updater on the folder is LOCKED; a reader is not.
    await expect(world.updater().start()).rejects.toMatchObject({ code: 'LOCKED' });
    const reader = await startReader(world.dir);
    readers.push(reader);
    expect(reader.first).toEqual({ ...JSON.parse(JSON.stringify(updater.active)), bundled: false, pid: reader.child.pid });
    const [file] = reader.first.files;
    expect(await sha256(join(reader.first.path, file.path))).toBe(file.sha256);
    await reader.release();
    expect(await readdir(join(world.dir, 'readers'))).toEqual([]);
  });

  it('a held pin keeps its version through retention and gc; released, the next gc removes it', async () => {
    await world.install('1.0.0');
    const updater = world.updater();
    await updater.start();
    const reader = await startReader(world.dir);
    readers.push(reader);
    expect(reader.first.version).toBe('1.0.0');
    await updateTwice(updater);
    expect(updater.getSnapshot().context.retained.map((v) => v.version)).toEqual(['1.1.0']);
    // Retention dropped 1.0.0 from the list, but the reader still has it on disk, whole.
    expect(await versionsOnDisk()).toEqual(['1.0.0', '1.1.0', '1.2.0']);
    const report = await updater.gc();
    expect(report.removedVersions).toEqual([]);
    for (const file of reader.first.files) expect(await sha256(join(reader.first.path, file.path))).toBe(file.sha256);
    await reader.release();
    expect((await updater.gc()).removedVersions).toEqual(['1.0.0']);
    expect(await versionsOnDisk()).toEqual(['1.1.0', '1.2.0']);
  });

  it('the pin of a reader that died (killed) is ignored and removed', async () => {
    await world.install('1.0.0');
    const updater = world.updater();
    await updater.start();
    const reader = await startReader(world.dir);
    readers.push(reader);
    await reader.kill();
    expect(await readdir(join(world.dir, 'readers'))).toHaveLength(1);
    await updateTwice(updater);
    // The switch's own clean-up already ignored the dead pin.
    expect(await versionsOnDisk()).toEqual(['1.1.0', '1.2.0']);
    expect(await readdir(join(world.dir, 'readers'))).toEqual([]);
  });

  it('a pin whose lease ran out is ignored even while its process lives', async () => {
    await world.install('1.0.0');
    const updater = world.updater();
    await updater.start();
    const hourAgo = Date.now() - 60 * 60_000;
    const stale = await readActive({ dir: world.dir, leaseMs: 60_000, now: () => hourAgo });
    const held = await readActive({ dir: world.dir, leaseMs: 60_000, now: () => hourAgo });
    await held.renew(); // still the same clock: renewing does not save it either
    await updateTwice(updater);
    expect(await versionsOnDisk()).toEqual(['1.1.0', '1.2.0']);
    await stale.release();
    await held.release();
  });

  it('refuses a symbolic link planted at the readers folder (readActive and gc), writing nothing through it', async () => {
    await world.install('1.0.0');
    const elsewhere = join(world.root, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(world.dir, 'readers'));
    await expect(readActive({ dir: world.dir })).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringContaining('symbolic link') });
    const updater = world.updater();
    await updater.start();
    await expect(updater.gc()).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(await readdir(elsewhere)).toEqual([]);
    expect(await versionsOnDisk()).toEqual(['1.0.0']);
  });

  it('refuses a symbolic link planted in the active version folder', async () => {
    await world.install('1.0.0');
    await symlink('/etc/passwd', join(world.dir, 'versions', '1.0.0', 'extra.bin'));
    await expect(readActive({ dir: world.dir })).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
  });
});
