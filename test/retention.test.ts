import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { exclusiveBytes, planRetention } from '../machines/retention.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { mountCapability } from './helpers/systemPrograms.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

const v = (version: string, ...files: Array<[string, number]>) => ({ version, files: files.map(([sha256, size]) => ({ path: sha256, sha256, size })) });

describe('retention plan (pure)', () => {
  it('always keeps the version being replaced, then older ones within the count and the byte budget', () => {
    const next = v('4.0.0', ['d', 10]);
    const older = [v('2.0.0', ['b', 100]), v('1.0.0', ['a', 100], ['shared', 50])];
    const current = v('3.0.0', ['c', 1000], ['shared', 50]);
    expect(planRetention(next, current, older, { keepVersions: 2, maxRetainedBytes: Infinity }).retained.map((x) => x.version)).toEqual(['3.0.0']);
    expect(planRetention(next, current, older, { keepVersions: 4, maxRetainedBytes: Infinity }).retained.map((x) => x.version)).toEqual(['3.0.0', '2.0.0', '1.0.0']);
    // 'shared' is held by 3.0.0 too, so 1.0.0 costs 100 beyond the previous version, and 2.0.0 another 100.
    expect(planRetention(next, current, older, { keepVersions: 4, maxRetainedBytes: 150 })).toMatchObject({
      retained: [{ version: '3.0.0' }, { version: '2.0.0' }],
      dropped: [{ version: '1.0.0' }],
    });
    expect(planRetention(next, current, older, { keepVersions: 4, maxRetainedBytes: 0 }).retained.map((x) => x.version)).toEqual(['3.0.0']);
    expect(exclusiveBytes([older[1]!], [current])).toBe(100);
  });
});

describe('retention plan with a bundled model (pure)', () => {
  it('always keeps the bundled model, counted against neither keepVersions nor the byte budget', () => {
    const shipped = { ...v('1.0.0', ['s', 10_000]), bundledPath: '/opt/app/model' };
    const plan = planRetention(v('4.0.0', ['d', 10]), v('3.0.0', ['c', 100]), [v('2.0.0', ['b', 100]), shipped], { keepVersions: 2, maxRetainedBytes: 0 });
    expect(plan.retained.map((x) => x.version)).toEqual(['3.0.0', '1.0.0']);
    expect(plan.dropped.map((x) => x.version)).toEqual(['2.0.0']);
    // Replaced as active, it is the rollback target.
    expect(planRetention(v('2.0.0', ['b', 100]), shipped, [], { keepVersions: 2, maxRetainedBytes: 0 }).retained).toEqual([shipped]);
  });
});

describe('content-addressed storage', () => {
  it('stores a file shared by two versions once, and does not download it again', async () => {
    const vocab = randomBytes(300_000);
    await world.publishVersion('1.0.0', { files: { 'model.bin': randomBytes(100_000), 'vocab.bin': vocab } });
    const updater = world.updater();
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0', { files: { 'model.bin': randomBytes(100_000), 'vocab.bin': vocab } });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(world.modelRequests().map((r) => r.path)).not.toContain('/1.1.0/vocab.bin');
    const [old, current] = await Promise.all([
      stat(join(world.dir, 'versions', '1.0.0', 'vocab.bin')),
      stat(join(world.dir, 'versions', '1.1.0', 'vocab.bin')),
    ]);
    expect(current.ino).toBe(old.ino);
    expect(await readdir(join(world.dir, 'blobs'))).toHaveLength(3);
  });

  it('keeps keepVersions versions, and gc() removes interrupted staging and files no version uses', async () => {
    const updater = world.updater({ keepVersions: 3 });
    await updater.start();
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
      await world.publishVersion(version);
      await updater.check();
    }
    expect(updater.getSnapshot().context.retained.map((x) => x.version)).toEqual(['1.2.0', '1.1.0']);
    expect((await readdir(join(world.dir, 'versions'))).sort()).toEqual(['1.1.0', '1.2.0', '1.3.0']);
    expect(await readdir(join(world.dir, 'blobs'))).toHaveLength(3);

    await mkdir(join(world.dir, 'staging', '9.9.9'), { recursive: true });
    await writeFile(join(world.dir, 'staging', '9.9.9', 'model.bin'), randomBytes(1000));
    await writeFile(join(world.dir, 'blobs', 'f'.repeat(64)), randomBytes(500));
    const report = await updater.gc();
    expect(report).toMatchObject({ removedVersions: [], removedStaging: ['9.9.9'], freedBytes: 1500 });
    expect(updater.log.records().at(-1)).toMatchObject({ type: 'log.gc', data: { removedStaging: ['9.9.9'], freedBytes: 1500 } });
    expect(await readdir(join(world.dir, 'blobs'))).toHaveLength(3);
    expect(updater.active?.version).toBe('1.3.0');
  });
});

/** A real small filesystem: root can mount a tmpfs (CI runs as root). */
async function withTmpfs(sizeMB: number, body: (mount: string) => Promise<void>) {
  const mount = await mkdtemp(join(tmpdir(), 'model-updater-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMB}m`, 'tmpfs', mount]);
  try {
    await body(mount);
  } finally {
    execFileSync('umount', [mount]);
    await rm(mount, { recursive: true, force: true });
  }
}

const mounting = mountCapability();
describe.skipIf(mounting.skip)('disk space on a real 24 MB filesystem', () => {
  beforeAll(() => mounting.require());

  it('INSUFFICIENT_DISK_SPACE before the first byte, and the preflight counts what retention frees', async () => {
    await withTmpfs(24, async (mount) => {
      const dir = join(mount, 'models');
      await world.publishVersion('1.0.0', { bytes: 7_000_000 });
      const updater = world.updater({ dir });
      try {
        await updater.start();
        await updater.check();
        await world.publishVersion('1.1.0', { bytes: 7_000_000 });
        await updater.check();
        expect(updater.getSnapshot().context.retained.map((x) => x.version)).toEqual(['1.0.0']);

        // 14 MB used of 24: a 30 MB version cannot fit, whatever is freed, and nothing is fetched.
        await world.publishVersion('2.0.0', { bytes: 30_000_000 });
        const before = world.modelRequests().length;
        expect(await updater.check()).toMatchObject({ outcome: 'failed', error: { code: 'INSUFFICIENT_DISK_SPACE' } });
        expect(world.modelRequests().length).toBe(before);
        expect(updater.active?.version).toBe('1.1.0');

        // 14 MB used: an 11 MB version fits only once 1.0.0, which the switch drops anyway, is gone.
        await world.publishVersion('2.0.1', { bytes: 11_000_000 });
        expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '2.0.1' });
        expect(updater.getSnapshot().context.retained.map((x) => x.version)).toEqual(['1.1.0']);
        expect((await readdir(join(dir, 'versions'))).sort()).toEqual(['1.1.0', '2.0.1']);
      } finally {
        updater.stop(); // the log's file handle would keep the filesystem busy
      }
    });
  });
});
