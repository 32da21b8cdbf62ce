/**
 * The `model-updater` CLI end to end: the real command run as a child process (through tsx, so the
 * current source runs without a build), against a loopback update service and real temp folders.
 */
import { runCli as runHelper, type CliResult } from './helpers/runCli.js';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLogFile } from '../src/node/fileEventLog.js';
import { publish } from '../src/publish/publish.js';
import { readChunkIndexEntries } from './helpers/publishedSite.js';
import { startTestServer, type RecordedRequest, type TestServer } from './helpers/testServer.js';

/** Every published file has a chunk index, listed in manifest.chunks.json (see test/chunkIndexDocument.test.ts). */
const indexRef = { url: expect.stringMatching(/^chunks\/[0-9a-f]{64}\.mucx$/), size: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) };

const MIB = 1024 * 1024;

/** Runs `model-updater <args>` from the current source and collects what it printed. */
function runCli(args: string[]): Promise<CliResult> {
  // These suites publish unsigned sites, so they say so with --allow-unsigned (the CLI refuses to guess);
  // test/trustCli.test.ts covers keys and signatures.
  const unsigned = ['check', 'update'].includes(args[0]!) && !args.includes('--trusted-key') && !args.includes('--help') ? ['--allow-unsigned'] : [];
  return runCliExactly([...args, ...unsigned]);
}

/** Runs `model-updater <args>` with exactly these arguments; `closeStdout` hangs up on its output at once. */
function runCliExactly(args: string[], { closeStdout = false } = {}): Promise<CliResult> {
  return runHelper(args, { closeStdout });
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Fails with the CLI's output in the message, which beats a bare "expected 1 to be 0". */
function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit code; stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

/** Asserts the `--json` failure shape and returns the error. */
function expectFailure(result: CliResult, code: string): { code: string; message: string } {
  expectExit(result, 1);
  expect(result.json, `stdout: ${result.stdout}`).toBeDefined();
  expect(result.json.ok).toBe(false);
  expect(result.json.error).toEqual({ code, message: expect.any(String) });
  expect(result.json.error.message.length).toBeGreaterThan(0);
  return result.json.error;
}

let tmp: string;
let www: string;
let server: TestServer;

/** One update service per test group: a subfolder of the served root, with its own manifest. */
function site(name: string) {
  return { out: path.join(www, name), manifestUrl: `${server.url}${name}/manifest.json`, prefix: `/${name}/` };
}

/** A file of random bytes under tmp/src. */
async function sourceFile(relative: string, bytes: number): Promise<{ file: string; content: Buffer }> {
  const file = path.join(tmp, 'src', relative);
  const content = randomBytes(bytes);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return { file, content };
}

/** The requests the server got while `action` ran. */
async function requestsDuring(action: () => Promise<unknown>): Promise<RecordedRequest[]> {
  const before = server.requests.length;
  await action();
  return server.requests.slice(before);
}

async function status(dir: string) {
  const result = await runCli(['status', '--dir', dir, '--json']);
  expectExit(result, 0);
  return result.json;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-cli-'));
  www = path.join(tmp, 'www');
  await mkdir(www, { recursive: true });
  server = await startTestServer({ root: www });
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('publish', () => {
  it('writes manifest.json and the file under <version>/', async () => {
    const { out } = site('pub-file');
    const { file, content } = await sourceFile('pub-file/model.onnx', 1 * MIB + 17);
    const result = await runCli(['publish', '--out', out, '--version', '1.0.0', '--json', file]);
    expectExit(result, 0);
    expect(result.json?.ok).toBe(true);

    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.schemaVersion).toBe(1);
    expect(manifest.versions).toHaveLength(1);
    const [entry] = manifest.versions;
    expect(entry.version).toBe('1.0.0');
    expect(entry.channel).toBe('stable');
    // The manifest keeps the shape every earlier client parses; the chunk index is listed beside it.
    expect(entry.files).toEqual([{ path: 'model.onnx', size: content.length, sha256: sha256(content), url: '1.0.0/model.onnx' }]);
    expect(await readChunkIndexEntries(out)).toEqual([{ sha256: sha256(content), size: content.length, chunkIndex: indexRef }]);
    expect(result.json.version).toEqual(entry);
    expect((await readFile(path.join(out, '1.0.0', 'model.onnx'))).equals(content)).toBe(true);
  });

  it('keeps the relative layout of a folder', async () => {
    const { out } = site('pub-folder');
    const a = await sourceFile('pub-folder/weights/a.bin', 64 * 1024);
    const b = await sourceFile('pub-folder/config.json', 100);
    const result = await runCli(['publish', '--out', out, '--version', '2.1.0', path.join(tmp, 'src', 'pub-folder')]);
    expectExit(result, 0);
    expect(result.stdout).toContain('2.1.0');

    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    const files = [...manifest.versions[0].files].sort((x: { path: string }, y: { path: string }) => x.path.localeCompare(y.path));
    expect(files).toEqual([
      { path: 'config.json', size: 100, sha256: sha256(b.content), url: '2.1.0/config.json' },
      { path: 'weights/a.bin', size: a.content.length, sha256: sha256(a.content), url: '2.1.0/weights/a.bin' },
    ]);
    const indexed = (await readChunkIndexEntries(out)).map((entry) => entry.sha256).sort();
    expect(indexed).toEqual([sha256(b.content), sha256(a.content)].sort());
    expect((await readFile(path.join(out, '2.1.0', 'weights', 'a.bin'))).equals(a.content)).toBe(true);
    expect((await readFile(path.join(out, '2.1.0', 'config.json'))).equals(b.content)).toBe(true);
  });

  it('refuses to publish the same version twice', async () => {
    const { out } = site('pub-twice');
    const { file } = await sourceFile('pub-twice/model.bin', 1000);
    expectExit(await runCli(['publish', '--out', out, '--version', '1.0.0', file]), 0);
    const before = await readFile(path.join(out, 'manifest.json'), 'utf8');

    const again = await runCli(['publish', '--out', out, '--version', '1.0.0', '--json', file]);
    const error = expectFailure(again, 'INVALID_ARGUMENT');
    expect(error.message).toContain('1.0.0');
    expect(await readFile(path.join(out, 'manifest.json'), 'utf8')).toBe(before);
  });

  it('records --requires-app and --channel in the manifest', async () => {
    const { out } = site('pub-meta');
    const { file } = await sourceFile('pub-meta/model.bin', 1000);
    const result = await runCli(['publish', '--out', out, '--version', '3.0.0', '--requires-app', '>=2.0.0', '--channel', 'beta', '--json', file]);
    expectExit(result, 0);
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.versions[0]).toMatchObject({ version: '3.0.0', channel: 'beta', requires: { app: '>=2.0.0' } });
  });
});

describe('check, update, status, rollback', () => {
  let out: string;
  let manifestUrl: string;
  let prefix: string;
  let dir: string;
  let v1: Buffer;
  let v11: Buffer;

  beforeAll(async () => {
    ({ out, manifestUrl, prefix } = site('life'));
    dir = path.join(tmp, 'life-models');
    const source = await sourceFile('life/1.0.0/model.bin', 2 * MIB);
    v1 = source.content;
    expectExit(await runCli(['publish', '--out', out, '--version', '1.0.0', source.file]), 0);
  });

  it('check on an empty folder offers 1.0.0 and downloads nothing', async () => {
    let result!: CliResult;
    const requests = await requestsDuring(async () => {
      result = await runCli(['check', '--manifest', manifestUrl, '--dir', dir, '--json']);
    });
    expectExit(result, 0);
    expect(result.json).toMatchObject({ ok: true, updateAvailable: true, candidate: { version: '1.0.0', size: v1.length }, active: null });
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.map((request) => request.path)).toEqual(requests.map(() => `${prefix}manifest.json`));
    expect(existsSync(path.join(dir, 'versions', '1.0.0'))).toBe(false);
  });

  it('update installs 1.0.0 (under a --max-rate cap) and status reports it', async () => {
    const result = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--max-rate', '50m', '--json']);
    expectExit(result, 0);
    expect(result.json).toMatchObject({ ok: true, outcome: 'activated', active: { version: '1.0.0' } });

    const json = await status(dir);
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['active', 'retained', 'state']));
    const expectedPath = path.join(dir, 'versions', '1.0.0');
    expect(path.isAbsolute(json.active.path)).toBe(true);
    expect(json.active.version).toBe('1.0.0');
    expect(json.active.path).toBe(expectedPath);
    expect(json.active.files).toEqual([{ path: 'model.bin', size: v1.length, sha256: sha256(v1) }]);
    expect(json.retained).toEqual([]);
    expect(json.state).toBe('active');
    expect(sha256(await readFile(path.join(json.active.path, 'model.bin')))).toBe(sha256(v1));
  });

  it('a second update is up to date and costs one 304', async () => {
    let result!: CliResult;
    const requests = await requestsDuring(async () => {
      result = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']);
    });
    expectExit(result, 0);
    expect(result.json).toMatchObject({ ok: true, outcome: 'up-to-date', active: { version: '1.0.0' } });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request!.path).toBe(`${prefix}manifest.json`);
    expect(request!.headers['if-none-match']).toEqual(expect.stringMatching(/^"/));
    expect(request!.status).toBe(304);
  });

  it('update to 1.1.0 keeps 1.0.0 for rollback, and rollback restores it', async () => {
    const source = await sourceFile('life/1.1.0/model.bin', 1 * MIB);
    v11 = source.content;
    expectExit(await runCli(['publish', '--out', out, '--version', '1.1.0', source.file]), 0);

    const update = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']);
    expectExit(update, 0);
    expect(update.json).toMatchObject({ outcome: 'activated', active: { version: '1.1.0' } });
    const after = await status(dir);
    expect(after.active.version).toBe('1.1.0');
    expect(after.active.files).toEqual([{ path: 'model.bin', size: v11.length, sha256: sha256(v11) }]);
    expect(after.retained.map((kept: { version: string }) => kept.version)).toContain('1.0.0');
    expect(sha256(await readFile(path.join(after.active.path, 'model.bin')))).toBe(sha256(v11));

    const rollback = await runCli(['rollback', '--dir', dir, '--json']);
    expectExit(rollback, 0);
    expect(rollback.json).toMatchObject({ ok: true, outcome: 'rolled-back', from: '1.1.0', active: { version: '1.0.0' } });
    const rolled = await status(dir);
    expect(rolled.active.version).toBe('1.0.0');
    expect(rolled.active.path).toBe(path.join(dir, 'versions', '1.0.0'));
    expect(sha256(await readFile(path.join(rolled.active.path, 'model.bin')))).toBe(sha256(v1));
  });

  it('rollback to a version that is not retained fails with ROLLBACK_UNAVAILABLE', async () => {
    const result = await runCli(['rollback', '--dir', dir, '--to', '9.9.9', '--json']);
    const error = expectFailure(result, 'ROLLBACK_UNAVAILABLE');
    expect(error.message).toContain('9.9.9');
    expect((await status(dir)).active.version).toBe('1.0.0');
  });

  it('log prints one line per record, --json the records, --verify checks the chain', async () => {
    const { records } = readLogFile(path.join(dir, 'events.log'));
    expect(records.length).toBeGreaterThan(10);

    const text = await runCli(['log', '--dir', dir]);
    expectExit(text, 0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(records.length);
    expect(lines[0]).toMatch(/^\s*0\s/);
    expect(lines.at(-1)).toMatch(new RegExp(`^\\s*${records.length - 1}\\s`));

    const json = await runCli(['log', '--dir', dir, '--json']);
    expectExit(json, 0);
    const parsed = json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(parsed).toHaveLength(records.length);
    for (const [index, record] of parsed.entries()) {
      expect(Object.keys(record)).toEqual(expect.arrayContaining(['seq', 'ts', 'session', 'type', 'data', 'prev', 'hash']));
      expect(record.seq).toBe(index);
    }
    expect(parsed).toEqual(records);

    const verify = await runCli(['log', '--dir', dir, '--verify', '--json']);
    expectExit(verify, 0);
    expect(verify.json).toMatchObject({ ok: true, records: records.length, head: records.at(-1)!.hash });
  });
});

describe('gc and a damaged log', () => {
  it('gc removes interrupted staging; log --quarantine sets a damaged log aside and keeps the models', async () => {
    const { out, manifestUrl } = site('care');
    const dir = path.join(tmp, 'care-models');
    const source = await sourceFile('care/1.0.0/model.bin', 256 * 1024);
    expectExit(await runCli(['publish', '--out', out, '--version', '1.0.0', source.file]), 0);
    expectExit(await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']), 0);

    await mkdir(path.join(dir, 'staging', '9.9.9'), { recursive: true });
    await writeFile(path.join(dir, 'staging', '9.9.9', 'model.bin'), Buffer.alloc(4096));
    const gc = await runCli(['gc', '--dir', dir, '--json']);
    expectExit(gc, 0);
    expect(gc.json).toMatchObject({ ok: true, removedStaging: ['9.9.9'], freedBytes: 4096 });

    const healthy = await runCli(['log', '--dir', dir, '--quarantine', '--json']);
    expectFailure(healthy, 'INVALID_ARGUMENT');
    const log = path.join(dir, 'events.log');
    const lines = (await readFile(log, 'utf8')).split('\n');
    lines[1] = lines[1]!.replace('"seq":1', '"seq":7');
    await writeFile(log, lines.join('\n'));
    expectFailure(await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']), 'LOG_CORRUPT');
    const quarantined = await runCli(['log', '--dir', dir, '--quarantine', '--json']);
    expectExit(quarantined, 0);
    expect(quarantined.json).toMatchObject({ ok: true, movedTo: expect.stringContaining('events.log.quarantined-') });
    expect(existsSync(quarantined.json.movedTo)).toBe(true);
    const after = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']);
    expectExit(after, 0);
    expect(after.json).toMatchObject({ outcome: 'up-to-date', active: { version: '1.0.0' } });
    expectExit(await runCli(['log', '--dir', dir, '--verify']), 0);
  });
});

describe('--app-version', () => {
  it('does not install a version whose requires.app excludes the app', async () => {
    const { out, manifestUrl } = site('app');
    const dir = path.join(tmp, 'app-models');
    await publish({ out, version: '1.0.0', inputs: [(await sourceFile('app/1.0.0/model.bin', 256 * 1024)).file] });
    const first = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--app-version', '1.0.0', '--json']);
    expectExit(first, 0);
    expect(first.json).toMatchObject({ outcome: 'activated', active: { version: '1.0.0' } });

    const publishNext = await runCli(['publish', '--out', out, '--version', '2.0.0', '--requires-app', '>=2.0.0', (await sourceFile('app/2.0.0/model.bin', 256 * 1024)).file]);
    expectExit(publishNext, 0);
    const second = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--app-version', '1.0.0', '--json']);
    expectExit(second, 0);
    expect(second.json).toMatchObject({ ok: true, outcome: 'up-to-date', active: { version: '1.0.0' } });
    expect((await status(dir)).active.version).toBe('1.0.0');
    expect(existsSync(path.join(dir, 'versions', '2.0.0'))).toBe(false);

    // Without --app-version the range is not checked, and the CLI says which versions it did not check.
    const blind = await runCli(['check', '--manifest', manifestUrl, '--dir', dir, '--json']);
    expectExit(blind, 0);
    const warning = blind.json.warnings.find((text: string) => text.includes('--app-version'));
    expect(warning).toContain('2.0.0 (>=2.0.0)');
    expect(warning).not.toContain('1.0.0 (');
    expect(blind.stderr).toContain('warning: no --app-version given');
    // With it, no such warning (the run above that was held back by the range).
    expect(second.stderr).not.toContain('--app-version');
    expect(second.json.warnings.some((text: string) => text.includes('--app-version'))).toBe(false);

    // The range, not the version itself, held it back: an app that satisfies it gets 2.0.0.
    const third = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--app-version', '2.0.0', '--json']);
    expectExit(third, 0);
    expect(third.json).toMatchObject({ outcome: 'activated', active: { version: '2.0.0' } });
  });
});

describe('failures under --json', () => {
  it('a service answering 503 is SERVICE_UNAVAILABLE, promptly', async () => {
    const { out, manifestUrl, prefix } = site('down');
    await publish({ out, version: '1.0.0', inputs: [(await sourceFile('down/model.bin', 1000)).file] });
    server.fault(`${prefix}manifest.json`, { kind: 'status', status: 503, times: 1_000 });
    const startedAt = Date.now();
    let result!: CliResult;
    const requests = await requestsDuring(async () => {
      result = await runCli(['update', '--manifest', manifestUrl, '--dir', path.join(tmp, 'down-models'), '--json']);
    });
    const elapsedMs = Date.now() - startedAt;
    expectFailure(result, 'SERVICE_UNAVAILABLE');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((request) => request.status === 503)).toBe(true);
    // The chart defers with a back-off of seconds to minutes; the CLI must report, not wait it out.
    expect(elapsedMs).toBeLessThan(15_000);
  });

  it('a manifest the service refuses (404, 403) is SERVICE_REJECTED, not DOWNLOAD_FAILED', async () => {
    const { manifestUrl, prefix } = site('refused');
    const missing = await runCli(['update', '--manifest', manifestUrl, '--dir', path.join(tmp, 'refused-models'), '--json']);
    expect(expectFailure(missing, 'SERVICE_REJECTED').message).toContain('answered 404');
    server.fault(`${prefix}manifest.json`, { kind: 'status', status: 403, times: 1 });
    const forbidden = await runCli(['check', '--manifest', manifestUrl, '--dir', path.join(tmp, 'refused-models'), '--json']);
    expect(expectFailure(forbidden, 'SERVICE_REJECTED').message).toMatch(/answered 403.*credentials/);
  });

  it('an unreachable service is NETWORK_UNAVAILABLE', async () => {
    const port = await closedPort();
    const result = await runCli(['update', '--manifest', `http://127.0.0.1:${port}/manifest.json`, '--dir', path.join(tmp, 'offline-models'), '--json']);
    const error = expectFailure(result, 'NETWORK_UNAVAILABLE');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('a corrupted download is INTEGRITY_MISMATCH and leaves the old version active', async () => {
    const { out, manifestUrl, prefix } = site('corrupt');
    const dir = path.join(tmp, 'corrupt-models');
    const good = await sourceFile('corrupt/1.0.0/model.bin', 512 * 1024);
    await publish({ out, version: '1.0.0', inputs: [good.file] });
    expectExit(await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']), 0);

    await publish({ out, version: '1.1.0', inputs: [(await sourceFile('corrupt/1.1.0/model.bin', 1 * MIB)).file] });
    server.fault(`${prefix}1.1.0/model.bin`, { kind: 'corrupt', times: 1_000 });
    let result!: CliResult;
    const requests = await requestsDuring(async () => {
      result = await runCli(['update', '--manifest', manifestUrl, '--dir', dir, '--json']);
    });
    const error = expectFailure(result, 'INTEGRITY_MISMATCH');
    expect(error.message).toContain('1.1.0');
    // The bad bytes were really served (the failure is not some earlier error).
    expect(requests.some((request) => request.path === `${prefix}1.1.0/model.bin` && request.status === 200)).toBe(true);

    const after = await status(dir);
    expect(after.active.version).toBe('1.0.0');
    expect(sha256(await readFile(path.join(after.active.path, 'model.bin')))).toBe(sha256(good.content));
    expect(existsSync(path.join(dir, 'versions', '1.1.0'))).toBe(false);
    const staged = await readdir(path.join(dir, 'staging'), { recursive: true, withFileTypes: true });
    const stagedFiles = staged.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
    expect(stagedFiles.filter((file) => file.startsWith(path.join(dir, 'staging', '1.1.0')))).toEqual([]);

    const verify = await runCli(['log', '--dir', dir, '--verify']);
    expectExit(verify, 0);
    expect(verify.stdout).toContain('log OK');
  });

  it('a manifest that is not JSON is MANIFEST_INVALID', async () => {
    const { out, manifestUrl } = site('notjson');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'manifest.json'), '{"schemaVersion": 1, "versions": [');
    const result = await runCli(['update', '--manifest', manifestUrl, '--dir', path.join(tmp, 'notjson-models'), '--json']);
    const error = expectFailure(result, 'MANIFEST_INVALID');
    expect(error.message).toMatch(/JSON/);
  });

  it('a manifest that fails the schema is MANIFEST_INVALID naming the field', async () => {
    const { out, manifestUrl } = site('badschema');
    await mkdir(out, { recursive: true });
    const manifest = {
      schemaVersion: 1,
      modelId: 'badschema',
      versions: [{ version: '1.0.0', channel: 'stable', files: [{ path: 'model.bin', size: 10, sha256: 'not-a-digest', url: '1.0.0/model.bin' }] }],
    };
    await writeFile(path.join(out, 'manifest.json'), JSON.stringify(manifest));
    const result = await runCli(['update', '--manifest', manifestUrl, '--dir', path.join(tmp, 'badschema-models'), '--json']);
    const error = expectFailure(result, 'MANIFEST_INVALID');
    expect(error.message).toContain('versions.0.files.0.sha256');
  });
});

describe('arguments', () => {
  it('a missing required flag is INVALID_ARGUMENT', async () => {
    const result = await runCli(['update', '--dir', path.join(tmp, 'unused'), '--json']);
    const error = expectFailure(result, 'INVALID_ARGUMENT');
    expect(error.message).toContain('--manifest');
    expect(existsSync(path.join(tmp, 'unused'))).toBe(false);
  });

  it('an unknown flag is INVALID_ARGUMENT in the --json format, without a stack trace', async () => {
    const result = await runCli(['update', '--bogus', '--json']);
    const error = expectFailure(result, 'INVALID_ARGUMENT');
    expect(error.message).toContain('--bogus');
    expect(result.stderr).not.toContain('    at ');
  });

  it('update --max-rate takes bytes per second or 5m / 500k, and says what it wants otherwise', async () => {
    const dir = path.join(tmp, 'rate-models');
    for (const bad of ['fast', '0', '5.5.5', '5x']) {
      const error = expectFailure(await runCli(['update', '--manifest', 'http://127.0.0.1:9/manifest.json', '--dir', dir, '--max-rate', bad, '--json']), 'INVALID_ARGUMENT');
      expect(error.message).toBe(`--max-rate takes bytes per second or a rate like 5m (5 MiB/s) or 500k, more than 0; got "${bad}".`);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('check and update without --trusted-key or --allow-unsigned are INVALID_ARGUMENT, before touching the disk or the network', async () => {
    const { out, manifestUrl } = site('keyless');
    await publish({ out, version: '1.0.0', inputs: [(await sourceFile('keyless/model.bin', 1000)).file] });
    const dir = path.join(tmp, 'keyless-models');
    let json!: CliResult;
    let text!: CliResult;
    const requests = await requestsDuring(async () => {
      [json, text] = await Promise.all([
        runCliExactly(['check', '--manifest', manifestUrl, '--dir', dir, '--json']),
        runCliExactly(['update', '--manifest', manifestUrl, '--dir', dir]),
      ]);
    });
    const error = expectFailure(json, 'INVALID_ARGUMENT');
    expect(error.message).toContain('--trusted-key <file.pub>');
    expect(error.message).toContain('--allow-unsigned');
    expectExit(text, 1);
    expect(text.stderr).toMatch(/^error INVALID_ARGUMENT: No --trusted-key given: pass --trusted-key <file.pub>/);
    expect(requests).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('<command> --help prints that command\'s usage and exits 0', async () => {
    const asked = [...['keygen', 'publish', 'check', 'update', 'status', 'log', 'rollback', 'gc', 'stats'].map((command) => [command, '--help']), ['update', '-h']];
    const results = await Promise.all(asked.map((args) => runCliExactly(args)));
    for (const [i, result] of results.entries()) {
      expectExit(result, 0);
      expect(result.stdout).toMatch(new RegExp(`^usage: model-updater ${asked[i]![0]} `));
      expect(result.stdout.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toBe('');
    }
  });

  it('log --json into a reader that went away (`| head -1`) exits 0 quietly', async () => {
    const { out, manifestUrl } = site('epipe');
    const dir = path.join(tmp, 'epipe-models');
    await publish({ out, version: '1.0.0', inputs: [(await sourceFile('epipe/model.bin', 1000)).file] });
    expectExit(await runCli(['update', '--manifest', manifestUrl, '--dir', dir]), 0);
    for (const args of [['log', '--dir', dir, '--json'], ['log', '--dir', dir]]) {
      const result = await runCliExactly(args, { closeStdout: true });
      expect(result.stderr).toBe('');
      expectExit(result, 0);
    }
  });

  it('an unknown command exits 2', async () => {
    const result = await runCli(['frobnicate', '--json']);
    expectExit(result, 2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stdout).toBe('');
  });
});

/** A loopback port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = listener.address() as net.AddressInfo;
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  return port;
}
