/**
 * Proxies against a real one: Debian's tinyproxy, started by this file with its own config, whose log
 * names every request it forwarded. The update service runs on 127.0.0.2 (a host no default proxy
 * bypass covers) and, for https, on 127.0.0.1 with the test certificate. The CLI runs as a child with
 * the proxy variables in its environment; the library runs in-process with the `proxy` option.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { isUpdateError } from '../src/core/errors.js';
import { publish } from '../src/publish/publish.js';
import { openDirectExchange } from '../src/node/directHttpExchange.js';
import { downloadToPath as downloadFile } from './helpers/downloadToPath.js';
import { runCli as runHelper, type CliResult } from './helpers/runCli.js';
import { openNodeHttpExchange } from '../src/node/nodeHttpExchange.js';
import { proxyFor } from '../src/node/proxy.js';
import { freePort } from './helpers/freePort.js';
import { tinyproxyProgram } from './helpers/systemPrograms.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';
import { TEST_TLS } from './helpers/testTls.js';

const PROXY_VARIABLES = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

// Launching it is how the suite finds out; without it the suite skips, except in CI, where it fails.
const tinyproxy = tinyproxyProgram();

interface Tinyproxy {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** The request lines it forwarded so far, oldest first: 'GET http://… HTTP/1.1', 'CONNECT host:port HTTP/1.1'. */
  requests(): Promise<string[]>;
}

let tmp: string;
let model: Buffer;
/** The update service over http on 127.0.0.2. */
let origin: TestServer;
/** The same site over https on 127.0.0.1, which the test certificate names. */
let secureOrigin: TestServer;
/** The same site over https on 127.0.0.2, which the test certificate does not name. */
let misnamedOrigin: TestServer;
let proxy: Tinyproxy;
/** A proxy that wants credentials: user "updater", password "s3cret-pass". */
let guardedProxy: Tinyproxy;
/** Stops every tinyproxy started: SIGTERM (it shuts down on it), then waits for the exit. */
const stops: (() => Promise<void>)[] = [];

async function startTinyproxy(name: string, extra: string[]): Promise<Tinyproxy> {
  const port = await freePort();
  const logFile = path.join(tmp, `${name}.log`);
  const config = path.join(tmp, `${name}.conf`);
  await writeFile(config, [`Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', `LogFile "${logFile}"`, 'LogLevel Info', ...extra, ''].join('\n'));
  const child = spawn('tinyproxy', ['-d', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  stops.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const log = () => readFile(logFile, 'utf8').catch(() => '');
  // It logs this line once it listens; a probe connection would show up in its log.
  for (let attempt = 0; !(await log()).includes('Accepting connections'); attempt++) {
    if (child.exitCode !== null || attempt > 200) throw new Error(`tinyproxy did not start: ${stderr}${await log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: async () => [...(await log()).matchAll(/Request \(file descriptor \d+\): (.*)$/gm)].map((match) => match[1]!),
  };
}

/** What `proxy` forwarded while `action` ran. */
async function forwardedDuring(through: Tinyproxy, action: () => Promise<unknown>): Promise<string[]> {
  const before = (await through.requests()).length;
  await action();
  return (await through.requests()).slice(before);
}

/** Runs `model-updater <args>` from the source with exactly these proxy variables (none inherited). */
function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const base: Record<string, string | undefined> = { ...process.env, DEBUG: '' };
  for (const name of PROXY_VARIABLES) delete base[name];
  return runHelper([...args, '--allow-unsigned', '--json'], { env: { ...base, ...env } });
}

function expectInstalled(result: CliResult): void {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
  expect(result.json).toMatchObject({ ok: true, outcome: 'activated', active: { version: '1.0.0' } });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const modelDir = async () => mkdtemp(path.join(tmp, 'models-'));
/** Paths the origin was asked for since `from`. */
const pathsSince = (server: TestServer, from: number) => server.requests.slice(from).map((request) => request.path);

describe.skipIf(tinyproxy.skip)('proxies (tinyproxy)', () => {
  beforeAll(async () => {
    tinyproxy.require();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-proxy-'));
    const site = path.join(tmp, 'site');
    model = randomBytes(3 * 1024 * 1024 + 17);
    await mkdir(path.join(tmp, 'source'));
    await writeFile(path.join(tmp, 'source', 'model.bin'), model);
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'source')] });
    await writeFile(path.join(tmp, 'ca.pem'), TEST_TLS.cert);
    origin = await startTestServer({ root: site, host: '127.0.0.2' });
    secureOrigin = await startTestServer({ root: site, tls: TEST_TLS });
    misnamedOrigin = await startTestServer({ root: site, tls: TEST_TLS, host: '127.0.0.2' });
    // CONNECT only to the https test ports: a CONNECT anywhere else is refused (403).
    const connectPorts = [secureOrigin, misnamedOrigin].map((server) => `ConnectPort ${new URL(server.url).port}`);
    proxy = await startTinyproxy('proxy', connectPorts);
    guardedProxy = await startTinyproxy('guarded', [...connectPorts, 'BasicAuth updater s3cret-pass']);
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  afterAll(async () => {
    for (const stop of stops.splice(0)) await stop();
    await Promise.all([origin, secureOrigin, misnamedOrigin].map((server) => server?.close()));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the CLI updates through HTTP_PROXY: the proxy forwarded both the manifest and the model file', async () => {
    const manifestUrl = `${origin.url}manifest.json`;
    const dir = await modelDir();
    let result!: CliResult;
    const forwarded = await forwardedDuring(proxy, async () => {
      result = await runCli(['update', '--manifest', manifestUrl, '--dir', dir], { HTTP_PROXY: proxy.url });
    });
    expectInstalled(result);
    expect(forwarded).toContain(`GET ${manifestUrl} HTTP/1.1`);
    expect(forwarded).toContain(`GET ${origin.url}1.0.0/model.bin HTTP/1.1`);
    expect(sha256(await readFile(path.join(result.json.active.path, 'model.bin')))).toBe(sha256(model));
  });

  it('the library updates through the proxy option, the environment aside', async () => {
    // The environment names a proxy that is down: the option is used instead.
    vi.stubEnv('HTTP_PROXY', `http://127.0.0.1:${await freePort()}`);
    const updater = createModelUpdater({
      manifestUrl: `${origin.url}manifest.json`,
      dir: await modelDir(),
      allowUnsigned: true,
      policy: { checkOnStart: false, schedule: false },
      proxy: proxy.url,
    });
    const forwarded = await forwardedDuring(proxy, async () => {
      await updater.start();
      expect(await updater.check()).toMatchObject({ outcome: 'activated' });
    });
    const active = updater.active!;
    updater.stop();
    expect(forwarded).toEqual([`GET ${origin.url}manifest.json HTTP/1.1`, `GET ${origin.url}1.0.0/model.bin HTTP/1.1`]);
    expect(sha256(await readFile(path.join(active.path, 'model.bin')))).toBe(sha256(model));
  });

  it('the CLI takes --proxy <url> instead of the environment', async () => {
    const manifestUrl = `${origin.url}manifest.json`;
    let result!: CliResult;
    const forwarded = await forwardedDuring(proxy, async () => {
      const down = `http://127.0.0.1:${await freePort()}`;
      result = await runCli(['check', '--manifest', manifestUrl, '--dir', await modelDir(), '--proxy', proxy.url], { HTTP_PROXY: down });
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json).toMatchObject({ ok: true, updateAvailable: true, candidate: { version: '1.0.0' } });
    expect(forwarded).toEqual([`GET ${manifestUrl} HTTP/1.1`]);
  });

  it('https goes through a CONNECT tunnel, trusting the extra CA inside it (CLI with HTTPS_PROXY)', async () => {
    const authority = new URL(secureOrigin.url).host;
    const dir = await modelDir();
    const before = secureOrigin.requests.length;
    let result!: CliResult;
    const forwarded = await forwardedDuring(proxy, async () => {
      result = await runCli(['update', '--manifest', `${secureOrigin.url}manifest.json`, '--dir', dir], {
        HTTPS_PROXY: proxy.url,
        NODE_EXTRA_CA_CERTS: path.join(tmp, 'ca.pem'),
      });
    });
    expectInstalled(result);
    // One tunnel for the manifest, one for the model file; the origin answered both inside them.
    expect(forwarded).toEqual([`CONNECT ${authority} HTTP/1.1`, `CONNECT ${authority} HTTP/1.1`]);
    expect(pathsSince(secureOrigin, before)).toEqual(['/manifest.json', '/1.0.0/model.bin']);
  });

  it('inside the tunnel the certificate is checked against the origin, not the proxy', async () => {
    // The certificate names 127.0.0.1, which is the proxy's address, not the origin's (127.0.0.2).
    const partPath = path.join(tmp, 'misnamed.part');
    const url = `${misnamedOrigin.url}1.0.0/model.bin`;
    const forwarded = await forwardedDuring(proxy, async () => {
      const failure = await downloadFile({ url, partPath, expectedSize: model.length, ca: TEST_TLS.cert, proxy: proxy.url }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'DOWNLOAD_FAILED', message: expect.stringContaining(`TLS with ${new URL(url).host} failed`) });
    });
    expect(forwarded).toEqual([`CONNECT ${new URL(url).host} HTTP/1.1`]);

    // The same origin name through the same proxy, with a certificate that names it, works.
    const result = await downloadFile({ url: `${secureOrigin.url}1.0.0/model.bin`, partPath, expectedSize: model.length, ca: TEST_TLS.cert, proxy: proxy.url });
    expect(result.sha256).toBe(sha256(model));
  });

  it('NO_PROXY for the origin goes direct: the proxy forwards nothing', async () => {
    const dir = await modelDir();
    const before = origin.requests.length;
    let result!: CliResult;
    const forwarded = await forwardedDuring(proxy, async () => {
      result = await runCli(['update', '--manifest', `${origin.url}manifest.json`, '--dir', dir], { HTTP_PROXY: proxy.url, NO_PROXY: 'models.example.com,127.0.0.2' });
    });
    expectInstalled(result);
    expect(forwarded).toEqual([]);
    expect(pathsSince(origin, before)).toEqual(['/manifest.json', '/1.0.0/model.bin']);
  });

  it('a proxy that is down fails the update with NETWORK_UNAVAILABLE naming it; nothing is fetched directly', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const before = origin.requests.length;
    const result = await runCli(['update', '--manifest', `${origin.url}manifest.json`, '--dir', await modelDir()], { HTTP_PROXY: down });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.json.error.code).toBe('NETWORK_UNAVAILABLE');
    expect(result.json.error.message).toContain(`proxy ${down} (from HTTP_PROXY)`);
    expect(result.json.error.message).toContain('Check HTTP_PROXY');

    // The model file's transport too (the manifest's is above): the proxy option, down.
    const failure = await downloadFile({ url: `${origin.url}1.0.0/model.bin`, partPath: path.join(tmp, 'down.part'), expectedSize: model.length, proxy: down }).catch(
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'NETWORK_UNAVAILABLE', message: expect.stringContaining(`proxy ${down} (from the proxy option)`) });
    expect(origin.requests.length).toBe(before);
  });

  it('a proxy that refuses the CONNECT fails with NETWORK_UNAVAILABLE saying so', async () => {
    // tinyproxy allows CONNECT only to the https test ports; the http origin's port is not one of them.
    const url = `https://127.0.0.2:${new URL(origin.url).port}/1.0.0/model.bin`;
    const failure = await downloadFile({ url, partPath: path.join(tmp, 'refused.part'), expectedSize: model.length, proxy: proxy.url }).catch((error: unknown) => error);
    expect(isUpdateError(failure) && failure.code).toBe('NETWORK_UNAVAILABLE');
    expect((failure as Error).message).toMatch(/proxy http:\/\/127\.0\.0\.1:\d+ \(from the proxy option\): it refused the tunnel to 127\.0\.0\.2:\d+ \(403/);
  });

  it('a proxy that accepts the connection but never answers the CONNECT times out with NETWORK_UNAVAILABLE; an abort meanwhile is CANCELLED', async () => {
    const silent = net.createServer();
    let connected = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const attempt = downloadFile({ url: `${secureOrigin.url}1.0.0/model.bin`, partPath: path.join(tmp, 'silent.part'), expectedSize: model.length, proxy: silentUrl });
      const settled = attempt.catch((error: unknown) => error);
      await connected;
      // The proxy must answer within 20 s, inside the download's 30 s head deadline, so the error names it.
      await vi.advanceTimersByTimeAsync(20_000);
      expect(await settled).toMatchObject({ code: 'NETWORK_UNAVAILABLE', message: expect.stringContaining(`proxy ${silentUrl} (from the proxy option): it did not answer within 20000 ms`) });

      connected = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
      const controller = new AbortController();
      const cancelled = downloadFile({ url: `${secureOrigin.url}1.0.0/model.bin`, partPath: path.join(tmp, 'silent.part'), expectedSize: model.length, proxy: silentUrl, signal: controller.signal });
      await connected;
      controller.abort();
      await expect(cancelled).rejects.toMatchObject({ code: 'CANCELLED' });
    } finally {
      vi.useRealTimers();
      silent.close();
    }
  });

  it('credentials in the proxy URL go to the proxy as Proxy-Authorization, never to the origin', async () => {
    const credentials = `http://updater:s3cret-pass@127.0.0.1:${guardedProxy.port}`;
    const httpBefore = origin.requests.length;
    const httpsBefore = secureOrigin.requests.length;
    const forwarded = await forwardedDuring(guardedProxy, async () => {
      for (const server of [origin, secureOrigin]) {
        const partPath = path.join(tmp, `guarded-${server === origin ? 'http' : 'https'}.part`);
        const result = await downloadFile({ url: `${server.url}1.0.0/model.bin`, partPath, expectedSize: model.length, ca: TEST_TLS.cert, proxy: credentials });
        expect(result.sha256).toBe(sha256(model));
      }
    });
    expect(forwarded).toEqual([`GET ${origin.url}1.0.0/model.bin HTTP/1.1`, `CONNECT ${new URL(secureOrigin.url).host} HTTP/1.1`]);
    for (const request of [...origin.requests.slice(httpBefore), ...secureOrigin.requests.slice(httpsBefore)]) {
      expect(request.headers['proxy-authorization']).toBeUndefined();
    }

    // Without them the proxy answers 407, to the CONNECT (https) or in the origin's place (http): the
    // error says where to put them, for the model files and for the manifest alike.
    for (const server of [secureOrigin, origin]) {
      const failure = await downloadFile({ url: `${server.url}1.0.0/model.bin`, partPath: path.join(tmp, 'anonymous.part'), expectedSize: model.length, proxy: guardedProxy.url }).catch(
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({ code: 'NETWORK_UNAVAILABLE', message: expect.stringContaining('it wants credentials (407') });
    }
    const updater = createModelUpdater({ manifestUrl: `${origin.url}manifest.json`, dir: await modelDir(), allowUnsigned: true, policy: { checkOnStart: false, schedule: false }, proxy: guardedProxy.url });
    await updater.start();
    const result = await updater.check();
    updater.stop();
    expect(result).toMatchObject({ outcome: 'deferred', error: { code: 'NETWORK_UNAVAILABLE', message: expect.stringContaining('it wants credentials (407') } });
    // Wrong ones: tinyproxy answers 401 (not 407), which over plain http could be the origin's own answer;
    // to a CONNECT it can only be the proxy's.
    const wrong = await downloadFile({ url: `${secureOrigin.url}1.0.0/model.bin`, partPath: path.join(tmp, 'wrong.part'), expectedSize: model.length, proxy: credentials.replace('s3cret', 'guess') }).catch(
      (error: unknown) => error,
    );
    expect(wrong).toMatchObject({ code: 'NETWORK_UNAVAILABLE', message: expect.stringMatching(/it refused the tunnel to 127\.0\.0\.1:\d+ \(401/) });
  });

  it('both model transports (the direct socket and node:http) carry a file through the proxy, over http and https', async () => {
    const options = { signal: new AbortController().signal, ca: [TEST_TLS.cert], proxy: proxy.url };
    const before = (await proxy.requests()).length;
    for (const server of [origin, secureOrigin]) {
      for (const openExchange of [openDirectExchange, openNodeHttpExchange]) {
        const exchange = await openExchange(new URL(`${server.url}1.0.0/model.bin`), {}, options);
        expect(exchange?.status).toBe(200);
        const hash = createHash('sha256');
        let received = 0;
        await exchange!.receive({
          write: (bytes) => {
            hash.update(bytes);
            received += bytes.length;
            return true;
          },
        });
        expect(received).toBe(model.length);
        expect(hash.digest('hex')).toBe(sha256(model));
      }
    }
    const get = `GET ${origin.url}1.0.0/model.bin HTTP/1.1`;
    const connect = `CONNECT ${new URL(secureOrigin.url).host} HTTP/1.1`;
    expect((await proxy.requests()).slice(before)).toEqual([get, get, connect, connect]);
  });

  it('each redirect hop decides for its own URL: a hop NO_PROXY lists goes direct', async () => {
    // 127.0.0.2 goes through the proxy; it redirects to a mirror on 127.0.0.3, which NO_PROXY lists.
    const mirror = await startTestServer({ root: path.join(tmp, 'site'), host: '127.0.0.3' });
    try {
      vi.stubEnv('HTTP_PROXY', proxy.url);
      vi.stubEnv('NO_PROXY', '127.0.0.3');
      origin.fault('/1.0.0/model.bin', { kind: 'redirect', location: `${mirror.url}1.0.0/model.bin`, times: 1 });
      const forwarded = await forwardedDuring(proxy, async () => {
        const result = await downloadFile({ url: `${origin.url}1.0.0/model.bin`, partPath: path.join(tmp, 'redirected.part'), expectedSize: model.length });
        expect(result.sha256).toBe(sha256(model));
      });
      expect(forwarded).toEqual([`GET ${origin.url}1.0.0/model.bin HTTP/1.1`]);
      expect(mirror.requests.map((request) => request.path)).toEqual(['/1.0.0/model.bin']);
    } finally {
      origin.clearFaults();
      await mirror.close();
    }
  });
});

describe('which proxy a request goes through', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const clearEnvironment = () => {
    for (const name of PROXY_VARIABLES) vi.stubEnv(name, '');
  };
  const via = (url: string, setting?: string | false) => proxyFor(new URL(url), setting)?.url.href;

  it('reads HTTPS_PROXY for https and HTTP_PROXY for http, the lower-case name first, as curl does', () => {
    clearEnvironment();
    vi.stubEnv('HTTPS_PROXY', 'http://upper:3128');
    vi.stubEnv('HTTP_PROXY', 'http://plain:3128');
    expect(via('https://models.example.com/m.json')).toBe('http://upper:3128/');
    expect(via('http://models.example.com/m.json')).toBe('http://plain:3128/');
    vi.stubEnv('https_proxy', 'http://lower:3128');
    expect(via('https://models.example.com/m.json')).toBe('http://lower:3128/');
    expect(proxyFor(new URL('https://models.example.com/'), undefined)?.source).toBe('https_proxy');
    // A bare host:port is an http:// proxy.
    vi.stubEnv('https_proxy', 'lower:3128');
    expect(via('https://models.example.com/m.json')).toBe('http://lower:3128/');
  });

  it('NO_PROXY: host suffixes, *, ports and IP literals', () => {
    clearEnvironment();
    vi.stubEnv('HTTPS_PROXY', 'http://proxy:3128');
    vi.stubEnv('NO_PROXY', '.internal.example, 10.1.2.3, cdn.example.com:8443');
    expect(via('https://models.internal.example/')).toBeUndefined();
    expect(via('https://10.1.2.3/m.bin')).toBeUndefined();
    expect(via('https://cdn.example.com:8443/m.bin')).toBeUndefined();
    expect(via('https://cdn.example.com/m.bin')).toBe('http://proxy:3128/');
    expect(via('https://10.1.2.4/m.bin')).toBe('http://proxy:3128/');
    vi.stubEnv('no_proxy', '*');
    expect(via('https://anywhere.example/')).toBeUndefined();
  });

  it('the proxy option replaces the environment; false ignores it; anything but http:// is refused', () => {
    clearEnvironment();
    vi.stubEnv('HTTPS_PROXY', 'http://env:3128');
    vi.stubEnv('NO_PROXY', '*');
    expect(via('https://models.example.com/', 'http://option:8080')).toBe('http://option:8080/');
    vi.stubEnv('NO_PROXY', '');
    expect(via('https://models.example.com/', false)).toBeUndefined();
    expect(() => via('https://models.example.com/', 'socks5://proxy:1080')).toThrow(/only http:\/\/ proxies are supported/);
    expect(() => createModelUpdater({ dir: path.join(os.tmpdir(), 'unused'), proxy: 'socks5://proxy:1080' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    vi.stubEnv('HTTPS_PROXY', 'https://proxy:3128');
    expect(() => via('https://models.example.com/')).toThrow(/HTTPS_PROXY names a https:\/\/ proxy/);
  });
});
