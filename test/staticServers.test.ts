/**
 * Downloads from the real static servers the README promises to work with: nginx (Range, If-Range,
 * ETag, 304) and python's http.server (HTTP/1.0, no Range, no ETag). `.ci/run` installs both when they
 * are missing; without them these tests fail and say what to install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelUpdater } from '../src/index.js';
import { publish } from '../src/publish/publish.js';
import { downloadToPath } from './helpers/downloadToPath.js';
import { freePort } from './helpers/freePort.js';

const MIB = 1024 * 1024;

/** Fails the test with what to install when a server program is missing. */
function requireProgram(command: string, versionFlag: string, install: string): void {
  if (spawnSync(command, [versionFlag]).status !== 0) throw new Error(`${command} is missing: apt-get install -y ${install} (.ci/run does it).`);
}

let tmp: string;
let site: string;
let model: Buffer;
const processes: ChildProcess[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-static-'));
  site = path.join(tmp, 'site');
  model = randomBytes(12 * MIB + 321);
  await writeFile(path.join(tmp, 'model.onnx'), model);
  await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'model.onnx')] });
});

afterEach(async () => {
  for (const child of processes.splice(0)) {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(undefined)));
  }
  await rm(tmp, { recursive: true, force: true });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Resolves once something accepts connections on the port (the server is up), within 10 s. */
async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before listening`);
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

async function startNginx(): Promise<{ url: string; accessLog: string }> {
  requireProgram('nginx', '-v', 'nginx-light');
  const prefix = path.join(tmp, 'nginx');
  await mkdir(path.join(prefix, 'logs'), { recursive: true });
  const port = await freePort();
  const accessLog = path.join(prefix, 'logs', 'access.log');
  const config = [
    'daemon off;',
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    'error_log stderr;',
    `pid ${path.join(prefix, 'nginx.pid')};`,
    'events { worker_connections 64; }',
    'http {',
    "  log_format brief '$status $request $http_range $http_if_range';",
    `  access_log ${accessLog} brief;`,
    `  client_body_temp_path ${prefix}; proxy_temp_path ${prefix}; fastcgi_temp_path ${prefix}; uwsgi_temp_path ${prefix}; scgi_temp_path ${prefix};`,
    `  server { listen 127.0.0.1:${port}; root ${site}; }`,
    '}',
  ].join('\n');
  await writeFile(path.join(prefix, 'nginx.conf'), config);
  const child = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  processes.push(child);
  await waitForPort(port, child).catch((error: Error) => {
    throw new Error(`${error.message}; nginx said: ${stderr}`);
  });
  return { url: `http://127.0.0.1:${port}/`, accessLog };
}

async function startPythonHttpServer(): Promise<string> {
  requireProgram('python3', '--version', 'python3');
  const port = await freePort();
  const child = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', site], { stdio: 'ignore' });
  processes.push(child);
  await waitForPort(port, child);
  return `http://127.0.0.1:${port}/`;
}

/** Downloads into partPath and cancels once `after` bytes are on disk, as an interrupted attempt would. */
async function interruptedDownload(url: string, partPath: string, after: number): Promise<void> {
  const controller = new AbortController();
  let done = 0;
  const attempt = downloadToPath({ url, partPath, expectedSize: model.length, signal: controller.signal, onBytes: (n) => (done += n) >= after && controller.abort() });
  await expect(attempt).rejects.toMatchObject({ code: 'CANCELLED' });
}

describe('nginx', () => {
  it('updates, resumes an interrupted download with Range and If-Range (206), and answers an unchanged manifest with 304', async () => {
    const nginx = await startNginx();
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
    expect(log).toMatch(/^206 GET \/1\.0\.0\/model\.onnx HTTP\/1\.1 bytes=\d+- \\x22[0-9a-f]+-[0-9a-f]+\\x22$/m);
    expect(log).toMatch(/^304 GET \/manifest\.json HTTP\/1\.1/m);
  });
});

describe("python's http.server", () => {
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
