/**
 * Nothing on disk is trusted by its name or place: a symbolic link planted at any of the store's folders
 * (or a version, a file, a blob) pointing at a folder outside the model folder, then every operation.
 * Each one either refuses with STORAGE_FAILED naming the link and saying to remove it, or proceeds
 * without following it; the folder outside stays byte-identical, and once the link is removed the
 * active version loads and verifies.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelUpdater, type ModelUpdater } from '../src/node/createModelUpdater.js';
import { UpdateError } from '../src/core/errors.js';
import { verifyLog } from '../src/core/log/chain.js';
import type { ModelRef } from '../src/core/modelRef.js';
import { FsModelStore } from '../src/node/fsModelStore.js';
import { quarantineLog } from '../src/node/quarantineLog.js';
import { readActive } from '../src/node/readActive.js';
import { createWorld, type World } from './helpers/fixtures.js';

const run = promisify(execFile);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let world: World;
let template: string;
const next = { model: randomBytes(64 * 1024), vocab: randomBytes(4 * 1024) };
const nextSha = sha256(next.model);

beforeAll(async () => {
  world = await createWorld();
  const files = (tag: string) => ({ 'model.bin': randomBytes(64 * 1024), 'vocab/tokens.bin': Buffer.from(`tokens ${tag}`) });
  await world.publishVersion('1.0.0', { files: files('1.0.0') });
  const installer = world.updater();
  await installer.start();
  expect(await installer.check()).toMatchObject({ outcome: 'activated' });
  await world.publishVersion('1.1.0', { files: files('1.1.0') });
  expect(await installer.check()).toMatchObject({ outcome: 'activated' });
  installer.stop();
  await world.publishVersion('1.2.0', { files: { 'model.bin': next.model, 'vocab/tokens.bin': next.vocab } });
  template = join(world.root, 'template');
  // cp -a keeps the hard links between versions/ and blobs/ that the store relies on.
  await run('cp', ['-a', world.dir, template]);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

/** A loader that refuses bytes that are not the version's own: reading through a link would show here. */
const verifyingLoader = {
  async load(model: ModelRef) {
    for (const file of model.files) {
      if (sha256(await readFile(join(model.path, file.path))) !== file.sha256) throw new Error(`${file.path} does not verify`);
    }
    return model.version;
  },
};

interface Cell {
  root: string;
  dir: string;
  canary: string;
}

/** Every name, kind, mode and byte under `folder`. */
async function fingerprint(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(folder, { recursive: true })).sort()) {
    const path = join(folder, name);
    const info = await lstat(path);
    out[name] = info.isFile() ? `file ${info.mode.toString(8)} ${sha256(await readFile(path))}` : info.isSymbolicLink() ? `link ${await readlink(path)}` : `dir ${info.mode.toString(8)}`;
  }
  return out;
}

let cells = 0;
async function newCell(): Promise<Cell> {
  const root = join(world.root, `cell-${cells++}`);
  const dir = join(root, 'models');
  const canary = join(root, 'canary');
  await mkdir(join(canary, 'sub'), { recursive: true });
  await writeFile(join(canary, 'precious.txt'), 'do not touch\n');
  await writeFile(join(canary, 'sub', 'data.bin'), randomBytes(1024));
  // Names the store would recognise as its own, had it followed the link.
  await writeFile(join(canary, nextSha), 'not a blob\n');
  await mkdir(join(canary, '1.1.0'));
  await run('cp', ['-a', template, dir]);
  return { root, dir, canary };
}

interface Plant {
  /** The planted link, relative to the model folder. */
  at: string;
  plant(cell: Cell): Promise<void>;
  /** Removes the link (as the error message tells the user) and puts back what it displaced. */
  undo(cell: Cell): Promise<void>;
}

/** The store's entry at `at` is moved aside inside the model folder and replaced by a link to `target`. */
function replacing(at: string, target: (cell: Cell) => string): Plant {
  const aside = (cell: Cell) => join(cell.dir, `aside-${at.replaceAll('/', '-')}`);
  return {
    at,
    async plant(cell) {
      await rename(join(cell.dir, at), aside(cell)).catch(() => undefined);
      await symlink(target(cell), join(cell.dir, at));
    },
    async undo(cell) {
      await rm(join(cell.dir, at), { force: true });
      await rename(aside(cell), join(cell.dir, at)).catch(() => undefined);
    },
  };
}

const PLANTS: Plant[] = [
  replacing('blobs', (cell) => cell.canary),
  replacing('staging', (cell) => cell.canary),
  replacing('staging/1.2.0', (cell) => cell.canary),
  // Resume records of staged downloads, outside the payload's folders.
  replacing('resume', (cell) => cell.canary),
  replacing('resume/1.2.0', (cell) => cell.canary),
  replacing('versions', (cell) => cell.canary),
  // The version a rollback goes back to (1.1.0 is active; its folder is covered by `versions`).
  replacing('versions/1.0.0', (cell) => cell.canary),
  replacing('versions/1.0.0/model.bin', (cell) => join(cell.canary, 'precious.txt')),
  // A file in a subfolder of the active version.
  replacing('versions/1.1.0/vocab/tokens.bin', (cell) => join(cell.canary, 'precious.txt')),
  // The blob the coming update would store: planted before the update knows it.
  replacing(`blobs/${nextSha}`, (cell) => join(cell.canary, 'precious.txt')),
  // The small files at the top of the folder.
  replacing('active.json', (cell) => join(cell.canary, 'precious.txt')),
  replacing('install-id', (cell) => join(cell.canary, 'precious.txt')),
  replacing('.lock', (cell) => join(cell.canary, 'precious.txt')),
  replacing('trust.json', (cell) => join(cell.canary, 'precious.txt')),
  replacing('events.log', (cell) => join(cell.canary, 'precious.txt')),
  // The log's archived segments (the first one's name) and a rotation's next segment.
  replacing('events.000000000000.log', (cell) => join(cell.canary, 'precious.txt')),
  replacing('events.log.next', (cell) => join(cell.canary, 'precious.txt')),
  // Where readers beside the updater pin their versions (readActive).
  replacing('readers', (cell) => cell.canary),
];

const updaterOn = (dir: string): ModelUpdater<string> =>
  createModelUpdater({ manifestUrl: world.manifestUrl, dir, policy: { checkOnStart: false }, allowUnsigned: true, loader: verifyingLoader });

/** Each operation as a user runs it; resolves with an error (or null when it succeeded). */
const OPERATIONS: Record<string, (dir: string) => Promise<unknown>> = {
  async start(dir) {
    const updater = updaterOn(dir);
    try {
      await updater.start();
    } finally {
      updater.stop();
    }
  },
  async update(dir) {
    const updater = updaterOn(dir);
    try {
      await updater.start();
      const result = await updater.check();
      if (result.error) throw result.error;
      expect(result.outcome).toBe('activated');
    } finally {
      updater.stop();
    }
  },
  async gc(dir) {
    const updater = updaterOn(dir);
    try {
      await updater.start();
      await updater.gc();
    } finally {
      updater.stop();
    }
  },
  async rollback(dir) {
    const updater = updaterOn(dir);
    try {
      await updater.start();
      const result = await updater.rollback();
      if (result.error) throw result.error;
      expect(result.outcome).toBe('rolled-back');
    } finally {
      updater.stop();
    }
  },
  async status(dir) {
    const store = new FsModelStore(dir);
    await store.readPointer();
    await store.listVersions();
  },
  async 'discard staging'(dir) {
    await new FsModelStore(dir).discardStaging();
  },
  async 'remove a version'(dir) {
    await new FsModelStore(dir).removeVersion('1.0.0');
  },
  async 'quarantine the log'(dir) {
    await quarantineLog(dir, { force: true });
  },
  async 'read beside the updater'(dir) {
    const model = await readActive({ dir });
    await model.release();
  },
};

describe.each(PLANTS.map((plant) => ({ plant, at: plant.at })))('a symbolic link planted at $at', ({ plant }) => {
  it.each(Object.keys(OPERATIONS))('%s: refused with STORAGE_FAILED naming the link, or done without following it; nothing outside touched', async (operation) => {
    const cell = await newCell();
    await plant.plant(cell);
    const before = await fingerprint(cell.canary);

    const error = await OPERATIONS[operation]!(cell.dir).then(
      () => null,
      (caught: unknown) => caught,
    );
    if (error !== null) {
      // check() reports its error as a plain { code, message } in the result; the rest throw UpdateError.
      expect((error as UpdateError).code, (error as Error).message).toBe('STORAGE_FAILED');
      expect((error as UpdateError).message).toContain(join(cell.dir, plant.at));
      expect((error as UpdateError).message).toMatch(/Remove it/);
    }
    expect(await fingerprint(cell.canary)).toEqual(before);
    expect((await readdir(cell.root)).sort()).toEqual(['canary', 'models']);

    // The user removes the link as told: the active version loads and verifies, the log verifies.
    await plant.undo(cell);
    const updater = updaterOn(cell.dir);
    try {
      await updater.start();
      expect(['1.0.0', '1.1.0', '1.2.0']).toContain(updater.active?.version);
      expect(updater.getSnapshot().context.active?.version).toBe(updater.active?.version);
      expect(verifyLog(updater.log.records()).ok).toBe(true);
    } finally {
      updater.stop();
    }
    expect(await fingerprint(cell.canary)).toEqual(before);
    await rm(cell.root, { recursive: true, force: true });
  });
});

describe('links the host chose', () => {
  it('a model folder that is itself a symbolic link is the host’s choice: updates work through it', async () => {
    const cell = await newCell();
    const alias = join(cell.root, 'alias');
    await symlink(cell.dir, alias);
    const updater = updaterOn(alias);
    try {
      await updater.start();
      expect(await updater.check()).toMatchObject({ outcome: 'activated' });
      expect(updater.active?.version).toBe('1.2.0');
    } finally {
      updater.stop();
    }
  });
});

it('the link error says what to remove', async () => {
  const cell = await newCell();
  await replacing('staging', (c) => c.canary).plant(cell);
  const error = await new FsModelStore(cell.dir).collectGarbage([]).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(UpdateError);
  expect((error as UpdateError).message).toBe(
    `Refusing to delete old versions and downloads in ${cell.dir}: ${join(cell.dir, 'staging')} is a symbolic link, which could carry the operation outside the model folder. Remove it; model-updater never creates links there.`,
  );
});
