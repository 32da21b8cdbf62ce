/**
 * A published update service on a loopback server and a fresh model folder, for one test file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelUpdater, type ModelUpdater, type ModelUpdaterOptions } from '../../src/node/createModelUpdater.js';
import { publish } from '../../src/publish/publish.js';
import type { UpdaterSnapshot } from '../../src/core/log/replay.js';
import { startTestServer, type ServerOptions, type TestServer } from './testServer.js';

export interface World {
  root: string;
  site: string;
  dir: string;
  server: TestServer;
  manifestUrl: string;
  /** Publishes a version with one random file of `bytes` bytes (or the given files). */
  publishVersion(version: string, options?: { bytes?: number; requiresApp?: string; channel?: string; files?: Record<string, Buffer> }): Promise<void>;
  updater(options?: Partial<Parameters<typeof createModelUpdater<any>>[0]>): ModelUpdater<any>;
  /** Publishes `version` and installs it with an updater that is stopped again, as an earlier run would have. */
  install(version: string): Promise<void>;
  /** The requests the server got for model files (the manifest's left out). */
  modelRequests(): TestServer['requests'];
  close(): Promise<void>;
}

export async function createWorld(serverOptions: Partial<ServerOptions> = {}): Promise<World> {
  const root = await mkdtemp(join(tmpdir(), 'model-updater-test-'));
  const site = join(root, 'site');
  const dir = join(root, 'models');
  await mkdir(site, { recursive: true });
  const server = await startTestServer({ root: site, ...serverOptions });
  const updaters: Array<ModelUpdater<any>> = [];
  const world: World = {
    root,
    site,
    dir,
    server,
    manifestUrl: `${server.url}manifest.json`,
    async publishVersion(version, options = {}) {
      const source = join(root, 'source', version);
      await mkdir(source, { recursive: true });
      const files = options.files ?? { 'model.bin': randomBytes(options.bytes ?? 256 * 1024) };
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(source, name, '..'), { recursive: true });
        await writeFile(join(source, name), content);
      }
      await publish({
        out: site,
        version,
        inputs: [source],
        ...(options.requiresApp ? { requiresApp: options.requiresApp } : {}),
        ...(options.channel ? { channel: options.channel } : {}),
      });
    },
    updater(options = {}) {
      const updater = createModelUpdater({
        manifestUrl: `${server.url}manifest.json`,
        dir,
        appVersion: '1.0.0',
        policy: { checkOnStart: false },
        // The published test site is unsigned; test/trust*.test.ts cover signed manifests.
        ...(options.trustedKeys ? {} : { allowUnsigned: true }),
        ...options,
      });
      updaters.push(updater);
      return updater;
    },
    async install(version) {
      await world.publishVersion(version);
      const installer = world.updater();
      await installer.start();
      await installer.check();
      installer.stop();
    },
    // Model files only: neither the manifest nor the chunk indexes (chunks/) a check may fetch.
    modelRequests: () => server.requests.filter((r) => !/manifest(\.chunks)?\.json$/.test(r.path) && !r.path.startsWith('/chunks/')),
    async close() {
      for (const updater of updaters) updater.stop();
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return world;
}

/** Resolves with the first snapshot that satisfies `predicate` (the current one included). */
export function waitForSnapshot(updater: ModelUpdater<any>, predicate: (snapshot: UpdaterSnapshot) => boolean): Promise<UpdaterSnapshot> {
  return new Promise((resolve) => {
    if (predicate(updater.getSnapshot())) return resolve(updater.getSnapshot());
    const unsubscribe = updater.subscribe((snapshot) => {
      if (!predicate(snapshot)) return;
      unsubscribe();
      resolve(snapshot);
    });
  });
}

/** JSON form of a snapshot's state and context, for exact comparisons. */
export function plain(snapshot: Pick<UpdaterSnapshot, 'value' | 'context'>) {
  return JSON.parse(JSON.stringify({ value: snapshot.value, context: snapshot.context }));
}
