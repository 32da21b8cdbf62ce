/**
 * Downloads from the real static servers the README promises to work with: nginx (Range, If-Range,
 * ETag, 304) and python's http.server (HTTP/1.0, no Range, no ETag). Without them these suites skip
 * with a line that says what to install (under CI=true they fail); `.ci/run` installs both. Every
 * server is stopped gracefully and waited for.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createModelUpdater } from '../src/index.js';
import { publish } from '../src/publish/publish.js';
import { downloadToPath } from './helpers/downloadToPath.js';
import { freePort } from './helpers/freePort.js';
import { startNginx } from './helpers/nginx.js';
import { nginxProgram, python3Program } from './helpers/systemPrograms.js';

const MIB = 1024 * 1024;

let tmp: string;
let site: string;
let model: Buffer;
/** What each test started, stopped after it (gracefully, waiting for the exit). */
const stops: (() => Promise<void>)[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-static-'));
  site = path.join(tmp, 'site');
  model = randomBytes(12 * MIB + 321);
  await writeFile(path.join(tmp, 'model.onnx'), model);
  await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'model.onnx')] });
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await rm(tmp, { recursive: true, force: true });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Resolves once something accepts connections on the port (the server is up), within 10 s. */
async function waitForPort(port: number, hasExited: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (hasExited()) throw new Error('the server exited before listening');
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.destroy());
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port} after 10 s`);
}

/** python3 -m http.server on loopback; stopped with SIGTERM (it exits on it) and waited for. */
async function startPythonHttpServer(): Promise<string> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', site], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  stops.push(async () => {
    if (!hasExited()) child.kill('SIGTERM');
    await exited;
  });
  await waitForPort(port, hasExited);
  return `http://127.0.0.1:${port}/`;
}

/** Downloads into partPath and cancels once `after` bytes are on disk, as an interrupted attempt would. */
async function interruptedDownload(url: string, partPath: string, after: number): Promise<void> {
  const controller = new AbortController();
  let done = 0;
  const attempt = downloadToPath({ url, partPath, expectedSize: model.length, signal: controller.signal, onBytes: (n) => (done += n) >= after && controller.abort() });
  await expect(attempt).rejects.toMatchObject({ code: 'CANCELLED' });
}

const nginxInstalled = nginxProgram();
describe.skipIf(nginxInstalled.skip)('nginx', () => {
  beforeAll(() => nginxInstalled.require());

  it('updates, resumes an interrupted download with Range and If-Range (206), and answers an unchanged manifest with 304', async () => {
    const nginx = await startNginx({ root: site });
    stops.push(nginx.stop);
    const url = `${nginx.url}1.0.0/model.onnx`;
    const partPath = path.join(tmp, 'model.onnx.part');
    await interruptedDownload(url, partPath, 4 * MIB);
    const resumed = await downloadToPath({ url, partPath, expectedSize: model.length });
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(4 * MIB);
    expect(resumed.bytesFetched).toBe(model.length - resumed.resumedFrom);
    expect(resumed.sha256).toBe(sha256(model));

    const dir = path.join(tmp, 'models');
    const updater = createModelUpdater({ manifestUrl: `${nginx.url}manifest.json`, dir, allowUnsigned: true, policy: { checkOnStart: false, schedule: false } });
    await updater.start();
    try {
      expect((await updater.check('manual')).outcome).toBe('activated');
      expect((await updater.check('manual')).outcome).toBe('up-to-date');
      expect((await readFile(path.join(updater.active!.path, 'model.onnx'))).equals(model)).toBe(true);
    } finally {
      updater.stop();
    }
    const log = await readFile(nginx.accessLog, 'utf8');
    // The resume asked for the rest, guarded by nginx's strong ETag (its log writes quotes as \x22).
    expect(log).toMatch(/^206 GET \/1\.0\.0\/model\.onnx HTTP\/1\.1 bytes=\d+- \\x22[0-9a-f]+-[0-9a-f]+\\x22 \d+$/m);
    expect(log).toMatch(/^304 GET \/manifest\.json HTTP\/1\.1/m);
  });
});

const python3 = python3Program();
describe.skipIf(python3.skip)("python's http.server", () => {
  beforeAll(() => python3.require());

  it('updates, and starts an interrupted download over cleanly since the server ignores Range', async () => {
    const server = await startPythonHttpServer();
    const url = `${server}1.0.0/model.onnx`;
    const partPath = path.join(tmp, 'model.onnx.part');
    await interruptedDownload(url, partPath, 4 * MIB);
    const again = await downloadToPath({ url, partPath, expectedSize: model.length });
    expect(again).toMatchObject({ resumedFrom: 0, bytesFetched: model.length, sha256: sha256(model) });

    const dir = path.join(tmp, 'models');
    const updater = createModelUpdater({ manifestUrl: `${server}manifest.json`, dir, allowUnsigned: true, policy: { checkOnStart: false, schedule: false } });
    await updater.start();
    try {
      expect((await updater.check('manual')).outcome).toBe('activated');
      expect((await readFile(path.join(updater.active!.path, 'model.onnx'))).equals(model)).toBe(true);
    } finally {
      updater.stop();
    }
  });
});
