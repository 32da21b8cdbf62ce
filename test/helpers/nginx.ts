/**
 * A real nginx serving a folder on loopback, for tests and benchmarks: Range, If-Range, strong ETags,
 * 304, sendfile, and `limit_rate` per connection. Started in the foreground from a config of its own;
 * `stop()` asks the master to quit gracefully (SIGQUIT) and waits until it and its worker are gone.
 *
 * @example
 * const nginx = await startNginx({ root: site, limitRate: '20m' });
 * await fetch(`${nginx.url}1.0.0/model.bin`);
 * await nginx.stop();
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './freePort.js';

export interface NginxOptions {
  /** Folder served at `/`. */
  root: string;
  /** nginx's `limit_rate` for every connection, e.g. '20m' (bytes per second, m = MiB). Default none. */
  limitRate?: string;
  /** nginx's `max_ranges`: 0 turns Range off (every answer is a whole 200). Default nginx's own. */
  maxRanges?: number;
  /** More directives for the `server` block, after its listen and root: `location` blocks, headers. */
  serverDirectives?: string;
}

export interface Nginx {
  /** http://127.0.0.1:PORT/ */
  url: string;
  port: number;
  /** One line per request: `status method path protocol range if-range bytes-sent`. */
  accessLog: string;
  /** The master's pid. */
  pid: number;
  /** Graceful quit; resolves once the master exited (its worker exits before it). Idempotent. */
  stop(): Promise<void>;
}

/** Resolves once something accepts connections on the port, within 10 s. */
async function waitForPort(port: number, exited: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (exited()) throw new Error('nginx exited before listening');
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx does not listen on ${port} after 10 s`);
}

export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), 'model-updater-nginx-'));
  await mkdir(path.join(prefix, 'logs'), { recursive: true });
  const port = await freePort();
  const accessLog = path.join(prefix, 'logs', 'access.log');
  const config = [
    'daemon off;',
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    'error_log stderr;',
    `pid ${path.join(prefix, 'nginx.pid')};`,
    'events { worker_connections 256; }',
    'http {',
    "  log_format brief '$status $request $http_range $http_if_range $body_bytes_sent';",
    `  access_log ${accessLog} brief;`,
    '  sendfile on;',
    `  client_body_temp_path ${prefix}; proxy_temp_path ${prefix}; fastcgi_temp_path ${prefix}; uwsgi_temp_path ${prefix}; scgi_temp_path ${prefix};`,
    `  server { listen 127.0.0.1:${port}; root ${path.resolve(options.root)};` +
      (options.limitRate ? ` limit_rate ${options.limitRate};` : '') +
      (options.maxRanges !== undefined ? ` max_ranges ${options.maxRanges};` : '') +
      (options.serverDirectives ? `\n${options.serverDirectives}\n` : '') +
      ' }',
    '}',
  ].join('\n');
  const configFile = path.join(prefix, 'nginx.conf');
  await writeFile(configFile, config);
  const child = spawn('nginx', ['-p', prefix, '-c', configFile, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (!hasExited()) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(prefix, { recursive: true, force: true });
    })());
  try {
    await waitForPort(port, hasExited);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}; nginx said: ${stderr}`);
  }
  return { url: `http://127.0.0.1:${port}/`, port, accessLog, pid: child.pid!, stop };
}
