/**
 * `model-updater verify-service` against real servers: the loopback test server in its good and broken
 * configurations (no ranges, weak ETags, a missing file, wrong bytes, the wrong key, a manifest about to
 * expire), and the README's nginx example run in a real nginx.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, parsePrivateKeyText, publish } from '../src/publish/index.js';
import { freePort } from './helpers/freePort.js';
import { runCli } from './helpers/runCli.js';
import { startTestServer, type ServerOptions, type TestServer } from './helpers/testServer.js';

let tmp: string;
const servers: TestServer[] = [];
const pair = generateKeyPair();
const key = parsePrivateKeyText(pair.privateKeyPem, 'test key');
let publicKeyFile: string;
let otherKeyFile: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-verify-'));
  publicKeyFile = path.join(tmp, 'release.pub');
  await writeFile(publicKeyFile, `${pair.publicKey}\n`);
  otherKeyFile = path.join(tmp, 'other.pub');
  await writeFile(otherKeyFile, `${generateKeyPair().publicKey}\n`);
});
afterAll(async () => {
  for (const server of servers) await server.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A signed site with two versions (two files in 1.1.0), published into its own folder. */
async function site(name: string, { expires = '30d' } = {}) {
  const out = path.join(tmp, name);
  for (const [version, files] of [['1.0.0', ['model.bin']], ['1.1.0', ['model.bin', 'vocab.txt']]] as const) {
    const folder = path.join(tmp, 'src', name, version);
    await mkdir(folder, { recursive: true });
    for (const file of files) await writeFile(path.join(folder, file), randomBytes(50_000));
    await publish({ out, version, inputs: [folder], keys: [key], expires });
  }
  return out;
}

async function serve(root: string, options: Omit<ServerOptions, 'root'> = {}): Promise<string> {
  const server = await startTestServer({ root, ...options });
  servers.push(server);
  return `${server.url}manifest.json`;
}

const verify = (...args: string[]) => runCli(['verify-service', ...args]);

describe('verify-service', () => {
  it('passes a correct service, with --full checking every hash, as JSON and as a table', async () => {
    const manifestUrl = await serve(await site('good'));
    const result = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--full', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json).toMatchObject({ ok: true, manifest: { ok: true, signed: true, serial: 2, versions: ['1.0.0', '1.1.0'], problems: [], warnings: [] } });
    expect(result.json.files).toHaveLength(3);
    for (const file of result.json.files) {
      expect(file).toMatchObject({ status: 206, range: true, size: 50_000, problems: [], sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(file.etag).toMatch(/^"/);
    }
    const text = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/version\s+path\s+size\s+status\s+range\s+etag/);
    expect(text.stdout).toMatch(/1\.1\.0\s+vocab\.txt\s+50000\s+206\s+yes\s+strong/);
  });

  it('fails a server that ignores Range, or sends weak ETags', async () => {
    const root = await site('noranges');
    const noRanges = await verify('--manifest', await serve(root, { ranges: false }), '--trusted-key', publicKeyFile, '--json');
    expect(noRanges.code).toBe(1);
    expect(noRanges.json.ok).toBe(false);
    expect(noRanges.json.files[0]).toMatchObject({ status: 200, range: false, problems: [expect.stringContaining('answered 200')] });
    const weak = await verify('--manifest', await serve(root, { etag: 'weak' }), '--trusted-key', publicKeyFile, '--json');
    expect(weak.code).toBe(1);
    expect(weak.json.files[0].problems).toEqual([expect.stringContaining('weak ETag')]);
  });

  it('fails a missing file, a short file, and (with --full) wrong bytes of the right size', async () => {
    const root = await site('broken');
    await unlink(path.join(root, '1.1.0', 'vocab.txt'));
    await truncate(path.join(root, '1.0.0', 'model.bin'), 10_000);
    const manifestUrl = await serve(root);
    const result = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(result.code).toBe(1);
    const byPath = Object.fromEntries(result.json.files.map((file: { version: string; path: string }) => [`${file.version}/${file.path}`, file]));
    expect(byPath['1.1.0/vocab.txt'].problems).toEqual([expect.stringContaining('answered 404')]);
    expect(byPath['1.0.0/model.bin'].problems).toEqual([expect.stringContaining('answered 416')]);
    expect(byPath['1.1.0/model.bin'].problems).toEqual([]);

    const tampered = await site('tampered');
    await writeFile(path.join(tampered, '1.0.0', 'model.bin'), randomBytes(50_000));
    const tamperedUrl = await serve(tampered);
    expect((await verify('--manifest', tamperedUrl, '--trusted-key', publicKeyFile, '--json')).code).toBe(0);
    const full = await verify('--manifest', tamperedUrl, '--trusted-key', publicKeyFile, '--full', '--json');
    expect(full.code).toBe(1);
    expect(full.json.files[0].problems).toEqual([expect.stringContaining('SHA-256')]);
  });

  it('fails a manifest not signed by the trusted key; warns (exit 0) when it expires within 7 days', async () => {
    const manifestUrl = await serve(await site('soon', { expires: '3d' }));
    const wrongKey = await verify('--manifest', manifestUrl, '--trusted-key', otherKeyFile, '--json');
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.json).toMatchObject({ ok: false, manifest: { ok: false, problems: [expect.stringContaining('SIGNATURE_INVALID')] }, files: [] });
    const soon = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(soon.code).toBe(0);
    expect(soon.json.manifest.warnings).toEqual([expect.stringMatching(/^expires in 2\.\d days/)]);
  });
});

/** Resolves once something accepts connections on the port. */
async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode} before listening`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.destroy());
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx does not listen on ${port}`);
}

describe("the README's nginx example", () => {
  const hasNginx = spawnSync('nginx', ['-v']).status === 0;
  it('serves a published folder that verify-service --full passes, with the cache headers it promises', async (context) => {
    if (!hasNginx) {
      if (process.env.CI === 'true') throw new Error('nginx is missing: apt-get install -y nginx-light');
      console.log('skipped: nginx is not installed (apt-get install -y nginx-light)');
      context.skip();
    }
    const readme = await readFile(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const block = /<!-- nginx-example -->\n```nginx\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'the README has the nginx example').toBeDefined();
    const root = await site('nginx');
    const prefix = path.join(tmp, 'nginx-prefix');
    await mkdir(path.join(prefix, 'logs'), { recursive: true });
    const port = await freePort();
    const server = block!.replace('listen 8080;', `listen 127.0.0.1:${port};`).replace('root /srv/models;', `root ${root};`);
    expect(server).toContain(`root ${root};`);
    const config = [
      'daemon off;',
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'worker_processes 1;',
      'error_log stderr;',
      `pid ${path.join(prefix, 'nginx.pid')};`,
      'events { worker_connections 64; }',
      'http {',
      `  access_log off; client_body_temp_path ${prefix}; proxy_temp_path ${prefix}; fastcgi_temp_path ${prefix}; uwsgi_temp_path ${prefix}; scgi_temp_path ${prefix};`,
      server,
      '}',
    ].join('\n');
    await writeFile(path.join(prefix, 'nginx.conf'), config);
    const child = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    try {
      await waitForPort(port, child).catch((error: Error) => {
        throw new Error(`${error.message}; nginx said: ${stderr}`);
      });
      const base = `http://127.0.0.1:${port}/`;
      const result = await verify('--manifest', `${base}manifest.json`, '--trusted-key', publicKeyFile, '--full', '--json');
      expect(result.code, result.stdout + stderr).toBe(0);
      expect(result.json.manifest.etag).toMatch(/^"/);
      const manifest = await fetch(`${base}manifest.json`);
      expect(manifest.headers.get('cache-control')).toBe('no-cache');
      const file = await fetch(`${base}1.0.0/model.bin`);
      expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      await file.arrayBuffer();
      await manifest.arrayBuffer();
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(undefined)));
    }
  });
});
