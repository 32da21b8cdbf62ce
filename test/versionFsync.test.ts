/**
 * A new version's folder and every folder in it are fsynced before the switch, not only their parents:
 * otherwise a power cut after the pointer moved could lose a subfolder's entries (the hard links to the
 * model files) and leave the active version incomplete.
 *
 * fsync cannot be observed from outside the kernel, so the test watches the calls at the file-system
 * edge (node:fs/promises and FileHandle.sync, see helpers/fsOps.ts), with no seam in the store: it sees
 * the same calls the store really makes, in their order, whichever helper inside the store makes them.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createWorld, type World } from './helpers/fixtures.js';
import { watchFs, type FsOp } from './helpers/fsOps.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

it('every folder of the new version is fsynced after its last entry is made and before the pointer moves', async () => {
  await world.install('1.0.0');
  await world.publishVersion('1.1.0', {
    files: { 'model.bin': randomBytes(1024), 'vocab/tokens.bin': randomBytes(1024), 'heads/a/b/head.bin': randomBytes(1024), 'heads/a/c.bin': randomBytes(10) },
  });
  const updater = world.updater();
  await updater.start();
  const ops: FsOp[] = [];
  const stop = await watchFs((op) => ops.push(op));
  try {
    expect(await updater.check()).toMatchObject({ outcome: 'activated' });
  } finally {
    stop();
    updater.stop();
  }

  const final = join(world.dir, 'versions', '1.1.0');
  const entries = await readdir(final, { recursive: true, withFileTypes: true });
  const folders = ['', ...entries.filter((e) => e.isDirectory()).map((e) => relative(final, join(e.parentPath, e.name)))];
  expect(folders.sort()).toEqual(['', 'heads', 'heads/a', 'heads/a/b', 'vocab']);

  // The version is assembled aside, then renamed into place; the pointer is renamed over active.json.
  const intoPlace = ops.findIndex((op) => op.kind === 'rename' && op.to === final);
  const pointerMoved = ops.findIndex((op) => op.kind === 'rename' && op.to === join(world.dir, 'active.json'));
  expect(intoPlace).toBeGreaterThan(-1);
  expect(pointerMoved).toBeGreaterThan(intoPlace);
  const assembling = ops[intoPlace]!.path;
  for (const folder of folders) {
    const path = join(assembling, folder);
    // The last change to this folder's entries: a file linked in, or a subfolder made.
    const lastEntry = ops.findLastIndex((op, i) => i < intoPlace && (op.kind === 'link' || op.kind === 'mkdir') && (op.to ?? op.path).startsWith(`${path}/`) && !(op.to ?? op.path).slice(path.length + 1).includes('/'));
    const synced = ops.findIndex((op, i) => i > lastEntry && i < intoPlace && op.kind === 'fsync' && op.path === path);
    expect(synced, `${folder || 'the version folder'} fsynced before the rename into place`).toBeGreaterThan(-1);
  }
  // And the rename itself is made durable (versions/ synced) before the pointer moves.
  const versionsSynced = ops.findIndex((op, i) => i > intoPlace && i < pointerMoved && op.kind === 'fsync' && op.path === join(world.dir, 'versions'));
  expect(versionsSynced).toBeGreaterThan(-1);
});
