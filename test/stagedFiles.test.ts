/**
 * Nothing on disk is trusted by its name or its place: content reused from `blobs/` (or the simulator's
 * memory) is proven by hashing its bytes first, and resume records live outside the payload's names, so
 * any file name a manifest may list installs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedWorld } from '../src/testing/index.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { readLogFile } from '../src/node/fileEventLog.js';
import type { DownloadOutput } from '../machines/types.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function checkOnce() {
  const updater = world.updater();
  await updater.start();
  try {
    const result = await updater.check();
    return { result, active: updater.active };
  } finally {
    updater.stop();
  }
}

describe('content reused from blobs/ is proven by its bytes', () => {
  it('a planted blob under the name of a new file is not activated: the file is fetched and the blob replaced', async () => {
    await world.install('1.0.0');
    const model = randomBytes(300_000);
    await world.publishVersion('1.1.0', { files: { 'model.bin': model } });
    // Someone with write access to the folder plants other bytes under the new file's digest.
    const planted = join(world.dir, 'blobs', sha256(model));
    await writeFile(planted, randomBytes(model.length));

    const { result, active } = await checkOnce();

    expect(result).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect((await readFile(join(active!.path, 'model.bin'))).equals(model)).toBe(true);
    expect((await readFile(planted)).equals(model)).toBe(true);
    expect(world.modelRequests().filter((r) => r.path === '/1.1.0/model.bin')).toHaveLength(1);
    // The audit trail names what was removed.
    const downloaded = readLogFile(join(world.dir, 'events.log')).records.filter((record) => record.type === 'download.completed');
    expect(downloaded.map((record) => (record.data as unknown as DownloadOutput).discardedContent)).toEqual([undefined, [sha256(model)]]);
  });

  it('a bit-rotted blob shared with the installed version is downloaded again for the new one', async () => {
    const shared = randomBytes(200_000);
    await world.publishVersion('1.0.0', { files: { 'shared.bin': shared } });
    const first = await checkOnce();
    expect(first.result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    await world.publishVersion('1.1.0', { files: { 'shared.bin': shared, 'new.bin': randomBytes(1000) } });
    const blob = join(world.dir, 'blobs', sha256(shared));
    const rotten = Buffer.from(shared);
    rotten[1234]! ^= 0x01;
    await chmod(blob, 0o644);
    await writeFile(blob, rotten);

    const { result, active } = await checkOnce();

    expect(result).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect((await readFile(join(active!.path, 'shared.bin'))).equals(shared)).toBe(true);
    expect(world.modelRequests().filter((r) => r.path === '/1.1.0/shared.bin')).toHaveLength(1);
  });

  it('in the simulator too: damaged stored content is not activated', async () => {
    const sim = new SimulatedWorld();
    const shared = randomBytes(5_000);
    sim.service.publish('1.0.0', { 'shared.bin': shared });
    await sim.boot();
    sim.call('check', (u) => u.check());
    await sim.settle();
    expect(sim.updater?.active?.version).toBe('1.0.0');
    sim.service.publish('1.1.0', { 'shared.bin': shared, 'new.bin': 'new' });
    sim.store.damageContent(sha256(shared), randomBytes(shared.length));

    sim.call('check', (u) => u.check());
    await sim.settle();

    const active = sim.updater!.active!;
    expect(active.version).toBe('1.1.0');
    expect(sim.store.verifyVersion(active)).toBeNull();
    expect(sim.service.requests.filter((r) => r.url.endsWith('/1.1.0/shared.bin'))).toHaveLength(1);
  });
});

describe('resume records live outside the payload', () => {
  it('a version with files weights.bin and weights.bin.meta installs, in either order', async () => {
    const weights = randomBytes(100_000);
    const meta = Buffer.from(JSON.stringify({ expectedSize: 3, etag: '"not a sidecar"' }));
    await world.publishVersion('1.0.0', { files: { 'weights.bin': weights, 'weights.bin.meta': meta } });
    // The sidecar name first: its download must not be taken for, or overwritten by, weights.bin's record.
    const manifestPath = join(world.site, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { versions: Array<{ files: unknown[] }> };
    manifest.versions[0]!.files.reverse();
    await writeFile(manifestPath, JSON.stringify(manifest));

    const { result, active } = await checkOnce();

    expect(result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect((await readFile(join(active!.path, 'weights.bin'))).equals(weights)).toBe(true);
    expect((await readFile(join(active!.path, 'weights.bin.meta'))).equals(meta)).toBe(true);
  });

  it('a file with a 255-byte name (the longest a file system allows) installs, after a resume', async () => {
    const name = `${'w'.repeat(251)}.bin`;
    const content = randomBytes(400_000);
    await world.publishVersion('1.0.0', { files: { [name]: content } });
    world.server.fault(`/1.0.0/${name}`, { kind: 'drop-after', bytes: 100_000, times: 1 });
    // The dropped connection is retried within the same session (default retries), resuming the file.
    const { result, active } = await checkOnce();

    expect(result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect((await readFile(join(active!.path, name))).equals(content)).toBe(true);
    const ranges = world.modelRequests().map((request) => request.headers.range);
    expect(ranges).toEqual([undefined, 'bytes=100000-']);
  });
});
