/**
 * The trust flags of the CLI end to end (the real command through tsx, a loopback service, temp folders):
 * keygen, publish --key / --expires / --rotate-key, check and update with --trusted-key / --threshold,
 * --allow-unsigned shown as a warning, and a rejected manifest exiting 1 with its code in --json.
 */
import { runCli } from './helpers/runCli.js';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/testServer.js';
import { keySetId } from '../src/core/trust/keySet.js';
import { generateKeyPair } from '../src/publish/keys.js';



let tmp: string;
let server: TestServer;
const www = () => path.join(tmp, 'www');

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-trust-cli-'));
  await mkdir(www(), { recursive: true });
  server = await startTestServer({ root: www() });
});
afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function model(name: string): Promise<string> {
  const file = path.join(tmp, 'src', name, 'model.bin');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, randomBytes(2048));
  return file;
}

describe('CLI trust', () => {
  it('keygen writes <prefix>.pub and a 0600 <prefix>.key, and refuses to overwrite them', async () => {
    const prefix = path.join(tmp, 'keys', 'release');
    await mkdir(path.dirname(prefix), { recursive: true });
    const made = await runCli(['keygen', '--out', prefix, '--json']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.json).toMatchObject({ ok: true, keyid: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await readFile(`${prefix}.pub`, 'utf8')).trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect((await stat(`${prefix}.key`)).mode & 0o777).toBe(0o600);
    const again = await runCli(['keygen', '--out', prefix, '--json']);
    expect(again.code).toBe(1);
    expect(again.json.error.code).toBe('INVALID_ARGUMENT');
  });

  it('publish --key signs; update --trusted-key installs; a manifest signed by another key exits 1 with SIGNATURE_INVALID', async () => {
    const keys = path.join(tmp, 'keys2');
    await mkdir(keys, { recursive: true });
    expect((await runCli(['keygen', '--out', path.join(keys, 'a')])).code).toBe(0);
    expect((await runCli(['keygen', '--out', path.join(keys, 'evil')])).code).toBe(0);
    const out = path.join(www(), 'signed');
    const published = await runCli(['publish', '--out', out, '--version', '1.0.0', '--key', path.join(keys, 'a.key'), '--expires', '7d', '--json', await model('v1')]);
    expect(published.code, published.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.signed).toMatchObject({ serial: 1, expires: expect.any(String) });
    expect(manifest.signatures).toHaveLength(1);

    const dir = path.join(tmp, 'models-signed');
    const url = `${server.url}signed/manifest.json`;
    const update = await runCli(['update', '--manifest', url, '--dir', dir, '--trusted-key', path.join(keys, 'a.pub'), '--json']);
    expect(update.code, update.stdout + update.stderr).toBe(0);
    expect(update.json).toMatchObject({ ok: true, outcome: 'activated' });

    await runCli(['publish', '--out', out, '--version', '1.1.0', '--key', path.join(keys, 'evil.key'), await model('v2')]);
    const rejected = await runCli(['update', '--manifest', url, '--dir', dir, '--trusted-key', path.join(keys, 'a.pub'), '--json']);
    expect(rejected.code).toBe(1);
    expect(rejected.json).toMatchObject({ ok: false, error: { code: 'SIGNATURE_INVALID', message: expect.any(String) } });

    // --threshold 2 with a second trusted key: one signature is not enough.
    const check = await runCli(['check', '--manifest', url, '--dir', dir, '--trusted-key', path.join(keys, 'a.pub'), '--trusted-key', path.join(keys, 'evil.pub'), '--threshold', '2', '--json']);
    expect(check.code).toBe(1);
    expect(check.json.error.code).toBe('SIGNATURE_INVALID');
  });

  it('publish --rotate-key writes chained rotations (version, previous) that update follows, one after the other', async () => {
    const keys = path.join(tmp, 'keys-rotate');
    await mkdir(keys, { recursive: true });
    for (const name of ['a', 'b', 'c']) {
      const pair = generateKeyPair();
      await writeFile(path.join(keys, `${name}.pub`), `${pair.publicKey}\n`);
      await writeFile(path.join(keys, `${name}.key`), pair.privateKeyPem, { mode: 0o600 });
    }
    const pub = async (name: string) => (await readFile(path.join(keys, `${name}.pub`), 'utf8')).trim();
    const key = (name: string) => path.join(keys, `${name}.key`);
    const out = path.join(www(), 'rotating');
    const url = `${server.url}rotating/manifest.json`;
    const dir = path.join(tmp, 'models-rotating');
    const signed = async () => JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')).signed;
    const update = () => runCli(['update', '--manifest', url, '--dir', dir, '--trusted-key', path.join(keys, 'a.pub'), '--json']);

    expect((await runCli(['publish', '--out', out, '--version', '1.0.0', '--key', key('a'), await model('r1')])).code).toBe(0);
    expect((await update()).json).toMatchObject({ ok: true, outcome: 'activated' });
    const first = await runCli(['publish', '--out', out, '--key', key('a'), '--key', key('b'), '--rotate-key', path.join(keys, 'b.pub'), '--json']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect((await signed()).trust).toEqual({ keys: [await pub('b')], threshold: 1, version: 1, previous: keySetId([await pub('a')], 1) });
    expect((await update()).json).toMatchObject({ ok: true, outcome: 'up-to-date' });
    // The next rotation is the second, from b.
    expect((await runCli(['publish', '--out', out, '--key', key('b'), '--key', key('c'), '--rotate-key', path.join(keys, 'c.pub')])).code).toBe(0);
    expect((await signed()).trust).toEqual({ keys: [await pub('c')], threshold: 1, version: 2, previous: keySetId([await pub('b')], 1) });
    expect((await update()).json).toMatchObject({ ok: true, outcome: 'up-to-date' });
    expect(JSON.parse(await readFile(path.join(dir, 'trust.json'), 'utf8'))).toMatchObject({ keys: [await pub('c')], rotation: 2 });
  }, 120_000);

  it('without keys the CLI refuses unless --allow-unsigned, which it warns about on every run; with keys it refuses an unsigned manifest', async () => {
    const out = path.join(www(), 'unsigned');
    expect((await runCli(['publish', '--out', out, '--version', '1.0.0', await model('u1')])).code).toBe(0);
    const url = `${server.url}unsigned/manifest.json`;
    const dir = path.join(tmp, 'models-unsigned');
    const keyless = await runCli(['update', '--manifest', url, '--dir', dir, '--json']);
    expect(keyless.code).toBe(1);
    expect(keyless.json.error.code).toBe('INVALID_ARGUMENT');
    expect(keyless.json.error.message).toMatch(/pass --trusted-key <file\.pub>.* or --allow-unsigned/);
    const allowed = await runCli(['update', '--manifest', url, '--dir', dir, '--allow-unsigned', '--json']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toContain('warning: --allow-unsigned');
    expect(allowed.json.warnings[0]).toContain('not checked for a signature');
    const keys = path.join(tmp, 'keys-unsigned');
    await mkdir(keys, { recursive: true });
    expect((await runCli(['keygen', '--out', path.join(keys, 'k')])).code).toBe(0);
    const refused = await runCli(['update', '--manifest', url, '--dir', path.join(tmp, 'models-keyed'), '--trusted-key', path.join(keys, 'k.pub'), '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json.error.code).toBe('SIGNATURE_INVALID');
  });
});
