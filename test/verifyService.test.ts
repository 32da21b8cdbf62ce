/**
 * `model-updater verify-service` against real servers: the loopback test server in its good and broken
 * configurations (no ranges, weak ETags, a missing file, wrong bytes, the wrong key, a manifest about to
 * expire), and the README's nginx example run in a real nginx.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, parsePrivateKeyText, publish } from '../src/publish/index.js';
import { startNginx } from './helpers/nginx.js';
import { runCli } from './helpers/runCli.js';
import { nginxProgram } from './helpers/systemPrograms.js';
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
    // Every file has its index in the signed document (none is 8 MiB, so clients would fetch none of them).
    expect(result.json.chunkIndexes).toEqual({ url: manifestUrl.replace('manifest.json', 'manifest.chunks.json'), ok: true, files: 3, problems: [], warnings: [] });
    const text = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('manifest.chunks.json: ok, 3 file(s) listed');
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

  it('fails a chunk-index document clients would not trust, and an index that is not the one it names; warns when there is none', async () => {
    const root = await site('chunkdoc');
    // A large file, so clients would fetch its index.
    const large = path.join(tmp, 'src', 'chunkdoc', '2.0.0');
    await mkdir(large, { recursive: true });
    await writeFile(path.join(large, 'weights.bin'), randomBytes(8 * 1024 * 1024));
    await publish({ out: root, version: '2.0.0', inputs: [large], keys: [key] });
    const manifestUrl = await serve(root);
    expect((await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json')).json.chunkIndexes).toMatchObject({ ok: true, files: 4, problems: [] });

    const documentFile = path.join(root, 'manifest.chunks.json');
    const original = await readFile(documentFile, 'utf8');
    const document = JSON.parse(original);
    const indexFile = path.join(root, document.signed.files.find((entry: { size: number }) => entry.size === 8 * 1024 * 1024).chunkIndex.url);
    const index = await readFile(indexFile);
    await writeFile(indexFile, Buffer.concat([index, Buffer.from([0])]));
    const wrongIndex = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(wrongIndex.code).toBe(1);
    expect(wrongIndex.json.chunkIndexes.problems).toEqual([expect.stringContaining('INTEGRITY_MISMATCH')]);
    await rm(indexFile);
    const missingIndex = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(missingIndex.code).toBe(0);
    expect(missingIndex.json.chunkIndexes).toMatchObject({ ok: true, problems: [], warnings: [expect.stringContaining('answered 404: the file downloads whole')] });
    await writeFile(indexFile, index);

    await writeFile(documentFile, JSON.stringify({ ...document, signed: { ...document.signed, files: [] } }));
    const altered = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(altered.code).toBe(1);
    expect(altered.json).toMatchObject({ ok: false, manifest: { ok: true }, chunkIndexes: { ok: false, problems: [expect.stringContaining('SIGNATURE_INVALID')] } });

    await rm(documentFile);
    const none = await verify('--manifest', manifestUrl, '--trusted-key', publicKeyFile, '--json');
    expect(none.code).toBe(0);
    expect(none.json.chunkIndexes).toMatchObject({ ok: true, files: 0, warnings: [expect.stringContaining('none published')] });
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

const nginx = nginxProgram();
describe.skipIf(nginx.skip)("the README's nginx example", () => {
  beforeAll(() => nginx.require());

  it('serves a published folder that verify-service --full passes, with the cache headers it promises', async () => {
    const readme = await readFile(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const block = /<!-- nginx-example -->\n```nginx\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'the README has the nginx example').toBeDefined();
    // Its listen and root are placeholders; the rest runs as written.
    const parts = /^server \{\n\s*listen 8080;\n\s*root \/srv\/models;[^\n]*\n([\s\S]*)\}\s*$/.exec(block!);
    expect(parts, 'the example is one server block that starts with listen 8080 and root /srv/models').not.toBeNull();
    const server = await startNginx({ root: await site('nginx'), serverDirectives: parts![1] });
    try {
      const result = await verify('--manifest', `${server.url}manifest.json`, '--trusted-key', publicKeyFile, '--full', '--json');
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.json.manifest.etag).toMatch(/^"/);
      const manifest = await fetch(`${server.url}manifest.json`);
      expect(manifest.headers.get('cache-control')).toBe('no-cache');
      const document = await fetch(`${server.url}manifest.chunks.json`);
      expect(document.headers.get('cache-control')).toBe('no-cache');
      await document.arrayBuffer();
      const file = await fetch(`${server.url}1.0.0/model.bin`);
      expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      await file.arrayBuffer();
      await manifest.arrayBuffer();
    } finally {
      await server.stop();
    }
  });
});
