/**
 * Fleet control from the publish side: `publish --rollout` on a published version, `publish --pull` (a
 * client running a pulled version rolls back with VERSION_PULLED), and releasing a quarantined version
 * (API and CLI). Real folders, the real CLI, a real loopback HTTP server serving what publish wrote.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelUpdater, readLogFile } from '../src/index.js';
import { generateKeyPair, parsePrivateKeyText, publish } from '../src/publish/index.js';
import { runCli } from './helpers/runCli.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

let tmp: string;
let www: string;
let server: TestServer;
const pair = generateKeyPair();
const key = parsePrivateKeyText(pair.privateKeyPem, 'test key');
let keyFile: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-fleet-'));
  www = path.join(tmp, 'www');
  await mkdir(www, { recursive: true });
  keyFile = path.join(tmp, 'publisher.key');
  await writeFile(keyFile, pair.privateKeyPem);
  server = await startTestServer({ root: www });
});
afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function sourceFile(name: string): Promise<string> {
  const file = path.join(tmp, 'src', name, 'model.bin');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, randomBytes(2048));
  return file;
}

async function site(name: string, versions: string[]) {
  const out = path.join(www, name);
  for (const version of versions) await publish({ out, version, inputs: [await sourceFile(`${name}-${version}`)], keys: [key] });
  return { out, manifestUrl: `${server.url}${name}/manifest.json`, dir: path.join(tmp, `${name}-models`) };
}

const signedOf = async (out: string) => JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')).signed;

function updaterFor(s: { manifestUrl: string; dir: string }, extra: Record<string, unknown> = {}) {
  return createModelUpdater<string>({
    manifestUrl: s.manifestUrl,
    dir: s.dir,
    trustedKeys: [pair.publicKey],
    policy: { checkOnStart: false, schedule: false },
    ...extra,
  });
}

describe('publish --rollout', () => {
  it('sets the fraction on a published version, changes nothing else, re-signs with the next serial', async () => {
    const s = await site('rollout', ['1.0.0', '1.1.0']);
    const before = await signedOf(s.out);
    const result = await runCli(['publish', '--out', s.out, '--version', '1.1.0', '--rollout', '0', '--key', keyFile, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const after = await signedOf(s.out);
    expect(after.serial).toBe(before.serial + 1);
    expect(after.versions[1]).toEqual({ ...before.versions[1], rollout: 0 });
    expect(after.versions[0]).toEqual(before.versions[0]);
    // Clients honour it: at 0 nobody is offered 1.1.0; at 1 everyone is.
    const updater = updaterFor(s);
    await updater.start();
    expect((await updater.check()).version).toBe('1.0.0');
    expect((await updater.check()).outcome).toBe('up-to-date');
    await publish({ out: s.out, version: '1.1.0', rollout: 1, inputs: [], keys: [key] });
    expect((await signedOf(s.out)).versions[1].rollout).toBe(1);
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    updater.stop();
  });

  it('refuses a bad fraction, an unknown version, and an unsigned rewrite of a signed manifest, changing nothing', async () => {
    const s = await site('rollout-bad', ['1.0.0']);
    const before = await readFile(path.join(s.out, 'manifest.json'), 'utf8');
    for (const args of [
      ['--version', '1.0.0', '--rollout', '1.5', '--key', keyFile],
      ['--version', '9.9.9', '--rollout', '0.5', '--key', keyFile],
      ['--version', '1.0.0', '--rollout', '0.5'],
    ]) {
      const result = await runCli(['publish', '--out', s.out, ...args, '--json']);
      expect(result.code).toBe(1);
      expect(result.json.error.code).toBe('INVALID_ARGUMENT');
    }
    expect(await readFile(path.join(s.out, 'manifest.json'), 'utf8')).toBe(before);
  });

  it('publishes a new version with a rollout fraction', async () => {
    const s = await site('rollout-new', []);
    const entry = await publish({ out: s.out, version: '2.0.0', rollout: 0.25, inputs: [await sourceFile('rollout-new-2')], keys: [key] });
    expect(entry.rollout).toBe(0.25);
    expect((await signedOf(s.out)).versions[0].rollout).toBe(0.25);
  });
});

describe('publish --pull', () => {
  it('withdraws a version: a client running it rolls back with VERSION_PULLED, and it is never offered again', async () => {
    const s = await site('pull', ['1.0.0']);
    const updater = updaterFor(s);
    const rolledBack: unknown[] = [];
    updater.on('rolled-back', (payload) => rolledBack.push(payload));
    await updater.start();
    await updater.check();
    await publish({ out: s.out, version: '1.1.0', inputs: [await sourceFile('pull-1.1.0')], keys: [key] });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    // Keeps 1.0.0 (the previous version) for rollback.
    expect(updater.getSnapshot().context.retained.map((v) => v.version)).toEqual(['1.0.0']);

    const before = await signedOf(s.out);
    const pulled = await runCli(['publish', '--out', s.out, '--pull', '1.1.0', '--key', keyFile, '--json']);
    expect(pulled.code, pulled.stdout + pulled.stderr).toBe(0);
    const after = await signedOf(s.out);
    expect(after.serial).toBe(before.serial + 1);
    expect(after.versions[1]).toEqual({ ...before.versions[1], pulled: true });

    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'rolled-back', version: '1.0.0', error: { code: 'VERSION_PULLED' } });
    expect(updater.active?.version).toBe('1.0.0');
    expect(rolledBack).toMatchObject([{ version: '1.0.0', from: '1.1.0', cause: { code: 'VERSION_PULLED' } }]);
    // Never offered again, to this install or a new one.
    expect((await updater.check()).outcome).toBe('up-to-date');
    updater.stop();
    const fresh = updaterFor({ ...s, dir: path.join(tmp, 'pull-fresh') });
    await fresh.start();
    expect(await fresh.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    fresh.stop();
    // The log replays to the same place after a restart.
    const again = updaterFor(s);
    await again.start();
    expect(again.active?.version).toBe('1.0.0');
    again.stop();
  });

  it('with nothing kept to go back to, rolls back to the newest version still offered (VERSION_PULLED)', async () => {
    const s = await site('pull-empty', ['1.0.0', '1.1.0']);
    // A fresh install takes 1.1.0 straight away and keeps nothing else.
    const other = updaterFor({ ...s, dir: path.join(tmp, 'pull-empty-other') });
    const heard: string[] = [];
    other.on('activated', ({ version }) => heard.push(`activated ${version}`));
    other.on('rolled-back', ({ version, from, cause }) => heard.push(`rolled-back ${version} from ${from} (${cause?.code})`));
    await other.start();
    expect(await other.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await publish({ out: s.out, pull: '1.1.0', inputs: [], keys: [key] });
    expect(await other.check()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0', error: { code: 'VERSION_PULLED' } });
    expect(other.active?.version).toBe('1.0.0');
    expect(heard).toEqual(['activated 1.1.0', 'rolled-back 1.0.0 from 1.1.0 (VERSION_PULLED)']);
    // A newer version replacing a pulled one is an ordinary update.
    await publish({ out: s.out, version: '1.2.0', inputs: [await sourceFile('pull-empty-1.2.0')], keys: [key] });
    await publish({ out: s.out, pull: '1.0.0', inputs: [], keys: [key] });
    expect(await other.check()).toMatchObject({ outcome: 'activated', version: '1.2.0', error: null });
    expect(heard.at(-1)).toBe('activated 1.2.0');
    other.stop();
  });

  it('refuses to pull a version that is not published', async () => {
    const s = await site('pull-bad', ['1.0.0']);
    const result = await runCli(['publish', '--out', s.out, '--pull', '3.0.0', '--key', keyFile, '--json']);
    expect(result.code).toBe(1);
    expect(result.json.error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('release', () => {
  it('a version a rollback quarantined is offered again once released (API, journaled)', async () => {
    const s = await site('release', ['1.0.0']);
    let healthy = false;
    const loader = { load: (m: { version: string }) => m.version, healthCheck: (m: { version: string }) => healthy || m.version !== '1.1.0' };
    const updater = updaterFor(s, { loader });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    await publish({ out: s.out, version: '1.1.0', inputs: [await sourceFile('release-1.1.0')], keys: [key] });
    expect(await updater.check()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
    expect((await updater.check()).outcome).toBe('up-to-date');
    expect(() => updater.release('9.9.9')).toThrow(/not quarantined/);
    healthy = true;
    updater.release('1.1.0');
    expect(updater.getSnapshot().context.quarantine).toEqual([]);
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    updater.stop();
    const { records } = readLogFile(path.join(s.dir, 'events.log'));
    expect(records.some((record) => record.type === 'quarantine.released' && (record.data as { version?: string }).version === '1.1.0')).toBe(true);
  });

  it('model-updater release --dir --version releases it from the CLI', async () => {
    const s = await site('release-cli', ['1.0.0']);
    const loader = { load: (m: { version: string }) => m.version, healthCheck: (m: { version: string }) => m.version !== '1.1.0' };
    const updater = updaterFor(s, { loader });
    await updater.start();
    await updater.check();
    await publish({ out: s.out, version: '1.1.0', inputs: [await sourceFile('release-cli-1.1.0')], keys: [key] });
    expect((await updater.check()).outcome).toBe('rolled-back');
    updater.stop();
    const missing = await runCli(['release', '--dir', s.dir, '--version', '2.0.0', '--json']);
    expect(missing.code).toBe(1);
    expect(missing.json.error.code).toBe('INVALID_ARGUMENT');
    const released = await runCli(['release', '--dir', s.dir, '--version', '1.1.0', '--json']);
    expect(released.code, released.stdout + released.stderr).toBe(0);
    expect(released.json).toMatchObject({ ok: true, released: '1.1.0', quarantine: [] });
    const after = updaterFor(s);
    await after.start();
    expect(after.getSnapshot().context.quarantine).toEqual([]);
    expect(await after.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    after.stop();
  });
});
