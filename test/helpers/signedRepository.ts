/**
 * A signed update service for trust tests, in the manner of python-tuf's RepositorySimulator: it holds
 * the `signed` manifest as data, signs it with whichever keys the test says, and serves it (and the
 * model files) from the real loopback test server. A test changes serial, expiry, keys or bytes, then
 * calls `publish()` (or `serveRaw()` for bytes no honest publisher would write).
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest, ManifestVersion } from '../../machines/types.js';
import { createModelUpdater, type ModelUpdater, type ModelUpdaterOptions } from '../../src/node/createModelUpdater.js';
import { generateKeyPair, parsePrivateKeyText } from '../../src/publish/keys.js';
import { signEnvelope } from '../../src/publish/sign.js';
import { startTestServer, type TestServer } from './testServer.js';

export interface TestKey {
  publicKey: string;
  privateKey: KeyObject;
}

export const T0 = Date.parse('2027-01-01T00:00:00.000Z');
const DAY = 86_400_000;

export function newKey(): TestKey {
  const pair = generateKeyPair();
  return { publicKey: pair.publicKey, privateKey: parsePrivateKeyText(pair.privateKeyPem, 'test key') };
}

export interface SignedRepository {
  root: string;
  site: string;
  dir: string;
  server: TestServer;
  manifestUrl: string;
  /** The key clients trust from the start, and that signs by default. */
  rootKey: TestKey;
  /** Keys that sign the next publish(). */
  signers: TestKey[];
  /** The document publish() signs; tests edit it freely. */
  signed: Manifest & { serial: number; expires: string };
  /** The wall clock the updaters see (ms); tests move it. */
  time: number;
  /** Adds a version (random files of `bytes`, or the given ones) to the site and to `signed`. */
  addVersion(version: string, options?: { bytes?: number; files?: Record<string, Buffer> }): Promise<ManifestVersion>;
  /** Bumps the serial (unless `bump: false`), signs `signed` with `signers` and serves it. Returns the text. */
  publish(options?: { bump?: boolean }): Promise<string>;
  /** Serves these exact bytes as manifest.json. */
  serveRaw(bytes: Buffer | string): Promise<void>;
  /** An updater trusting `rootKey`, on this repository's clock. */
  updater(options?: Partial<ModelUpdaterOptions<any>>): ModelUpdater<any>;
  /** The trust state on disk, byte for byte: trust.json and active.json (null when absent). */
  trustedStateOnDisk(): Promise<{ trust: string | null; active: string | null }>;
  close(): Promise<void>;
}

export async function createSignedRepository(): Promise<SignedRepository> {
  const root = await mkdtemp(join(tmpdir(), 'model-updater-trust-'));
  const site = join(root, 'site');
  const dir = join(root, 'models');
  await mkdir(site, { recursive: true });
  const server = await startTestServer({ root: site });
  const rootKey = newKey();
  const updaters: Array<ModelUpdater<any>> = [];
  const readOrNull = (path: string) => readFile(path, 'utf8').catch(() => null);

  const repo: SignedRepository = {
    root,
    site,
    dir,
    server,
    manifestUrl: `${server.url}manifest.json`,
    rootKey,
    signers: [rootKey],
    signed: { schemaVersion: 1, modelId: 'asr', serial: 0, expires: new Date(T0 + 30 * DAY).toISOString(), versions: [] },
    time: T0,
    async addVersion(version, options = {}) {
      const files = options.files ?? { 'model.bin': randomBytes(options.bytes ?? 4096) };
      const entry: ManifestVersion = { version, channel: 'stable', files: [] };
      for (const [path, bytes] of Object.entries(files)) {
        const target = join(site, version, ...path.split('/'));
        await mkdir(join(target, '..'), { recursive: true });
        await writeFile(target, bytes);
        entry.files.push({ path, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), url: `${version}/${path}` });
      }
      repo.signed.versions.push(entry);
      return entry;
    },
    async publish({ bump = true } = {}) {
      if (bump) repo.signed.serial += 1;
      const envelope = signEnvelope(repo.signed, repo.signers.map((key) => key.privateKey));
      const text = `${JSON.stringify(envelope, null, 2)}\n`;
      await writeFile(join(site, 'manifest.json'), text);
      return text;
    },
    async serveRaw(bytes) {
      await writeFile(join(site, 'manifest.json'), bytes);
    },
    updater(options = {}) {
      const updater = createModelUpdater({
        manifestUrl: repo.manifestUrl,
        dir,
        trustedKeys: [rootKey.publicKey],
        policy: { checkOnStart: false },
        now: () => repo.time,
        ...options,
      });
      updaters.push(updater);
      return updater;
    },
    async trustedStateOnDisk() {
      return { trust: await readOrNull(join(dir, 'trust.json')), active: await readOrNull(join(dir, 'active.json')) };
    },
    async close() {
      for (const updater of updaters) updater.stop();
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return repo;
}
