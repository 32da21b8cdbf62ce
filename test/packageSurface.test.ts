/**
 * The package as a host installs it: entry points by audience, optional peer dependencies that a host
 * which does not inspect never loads, engines every dependency honours, and a lock file `npm install`
 * leaves as it is. The build output (tsc, as `npm run build` makes it) is installed in a temp folder whose
 * node_modules holds the package's dependencies and NOT its optional peers, then imported by name.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8'));

let tmp: string;
let app: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-package-'));
  const installed = path.join(tmp, 'app', 'node_modules', 'model-updater');
  await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(installed, 'dist')]);
  await cp(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
  // The package's dependencies, and fast-check (the optional peer model-updater/testing needs): the
  // inspector's optional peers are not installed.
  for (const name of [...Object.keys(pkg.dependencies), 'fast-check']) {
    const target = path.join(tmp, 'app', 'node_modules', name);
    await mkdir(path.dirname(target), { recursive: true });
    await symlink(path.join(ROOT, 'node_modules', name), target, 'dir');
  }
  app = path.join(tmp, 'app');
}, 180_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Runs an ES module in the app folder with plain node; returns what it printed as JSON. */
async function inApp(source: string): Promise<any> {
  const file = path.join(app, `probe-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(file, source);
  const { stdout } = await run(process.execPath, [file], { cwd: app, encoding: 'utf8' });
  return JSON.parse(stdout);
}

describe('entry points by audience', () => {
  it('the host runtime loads without the optional peers (@statelyai/inspect, ws) installed', async () => {
    const result = await inApp(`
      const root = await import('model-updater');
      const errors = [];
      for (const name of ['@statelyai/inspect', 'ws']) {
        try { await import(name); } catch (error) { errors.push(error.code); }
      }
      let inspect = null;
      try { await import('model-updater/inspect'); } catch (error) { inspect = error.code; }
      console.log(JSON.stringify({ exports: Object.keys(root).sort(), peersMissing: errors, inspect }));
    `);
    // The peers really are absent here, and the root entry loaded anyway: it does not import them.
    expect(result.peersMissing).toEqual(['ERR_MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND']);
    expect(result.inspect).toBe('ERR_MODULE_NOT_FOUND');
    expect(result.exports).toEqual(expect.arrayContaining(['createModelUpdater', 'UpdateError', 'isUpdateError', 'ERROR_CODES', 'createUpdater', 'readPublicKeyFile']));
    expect(result.exports).not.toContain('replayIntoInspector');
    expect(result.exports).not.toContain('publish');
  });

  it('model-updater/publish, /browser and /testing load by name', async () => {
    const result = await inApp(`
      const publish = await import('model-updater/publish');
      const browser = await import('model-updater/browser');
      const testing = await import('model-updater/testing');
      console.log(JSON.stringify({ publish: Object.keys(publish), browser: Object.keys(browser), testing: Object.keys(testing).length }));
    `);
    expect(result.publish).toEqual(expect.arrayContaining(['publish', 'generateKeyPair', 'writeKeyPair', 'readPrivateKeyFile', 'signEnvelope', 'verifyService', 'chunkIndexDocumentUrl', 'parseChunkIndexDocument']));
    expect(result.browser).toContain('createBrowserModelUpdater');
    expect(result.testing).toBeGreaterThan(0);
  });

  it('the types a custom platform needs are exported from the root', async () => {
    const declarations = await readFile(path.join(app, 'node_modules', 'model-updater', 'dist', 'src', 'index.d.ts'), 'utf8');
    for (const name of ['Platform', 'ModelStore', 'EventLog', 'Transport', 'StagingArea', 'TrustStore']) {
      expect(declarations, name).toMatch(new RegExp(`\\b${name}\\b`));
    }
  });

  it('declares @statelyai/inspect and ws as optional peer dependencies, not dependencies', () => {
    for (const name of ['@statelyai/inspect', 'ws']) {
      expect(pkg.dependencies[name]).toBeUndefined();
      expect(pkg.peerDependencies[name]).toBeDefined();
      expect(pkg.peerDependenciesMeta[name]).toEqual({ optional: true });
    }
  });
});

describe('install', () => {
  it('every dependency installed for users supports every Node that engines admits (npm install --engine-strict)', () => {
    const ours = pkg.engines.node as string;
    const refusing = Object.entries(lock.packages as Record<string, { dev?: boolean; engines?: { node?: string } }>)
      .filter(([where, entry]) => where !== '' && !entry.dev && entry.engines?.node)
      .filter(([, entry]) => !semver.subset(ours, entry.engines!.node!))
      .map(([where, entry]) => `${where} (${entry.engines!.node})`);
    expect(refusing).toEqual([]);
  });

  it('the lock file says what package.json says, so a fresh npm install leaves it unchanged', () => {
    const root = lock.packages[''];
    for (const field of ['name', 'version', 'license', 'bin', 'engines', 'dependencies', 'devDependencies', 'peerDependencies', 'peerDependenciesMeta']) {
      expect(root[field], field).toEqual(pkg[field]);
    }
    for (const name of [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]) {
      const installed = lock.packages[`node_modules/${name}`];
      expect(installed, name).toBeDefined();
      expect(semver.satisfies(installed.version, pkg.dependencies[name] ?? pkg.devDependencies[name]), name).toBe(true);
    }
  });
});
