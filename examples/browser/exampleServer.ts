/**
 * The browser example's server, as one URL on 127.0.0.1: the built page and its update site (static
 * files with ETag and Range, through a loopback test server that can also inject faults), plus one small
 * endpoint that plays the publisher: `POST /publish-next` publishes the next version of the story.
 *
 * The story: 1.0.0 is on offer from the start; then 1.1.0 (good, 4 MiB: long enough to watch and to
 * reload in the middle of); then 1.2.0, whose weights are wrong, so its health check fails, the page
 * rolls back to 1.1.0 and quarantines 1.2.0.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../test/helpers/testServer.js';
import { GOOD_MODEL, type LinearModel } from './model.js';
import { publishModel } from './publishDemo.js';

export interface StoryStep {
  version: string;
  model: LinearModel;
  /** Filler bytes in weights.bin, so a download takes long enough to watch. */
  padBytes: number;
  /** What publishing it shows, for the page. */
  note: string;
}

export const STORY: readonly StoryStep[] = [
  { version: '1.0.0', model: GOOD_MODEL, padBytes: 512 * 1024, note: 'the first model' },
  { version: '1.1.0', model: { w: [1, 0.5, 0], b: 2.5 }, padBytes: 4 * 1024 * 1024, note: 'a better model, 4 MiB: reload the page while it downloads' },
  { version: '1.2.0', model: { w: [9, 9, 9], b: 0 }, padBytes: 256 * 1024, note: 'wrong weights: its health check fails and the page keeps 1.1.0' },
];

/** What `GET /publish-next` answers (and `POST`, after publishing). */
export interface StoryStatus {
  published: string[];
  /** The next version `POST /publish-next` would publish, or null when the story is told. */
  next: { version: string; note: string } | null;
}

export interface ExampleServer {
  /** 'http://127.0.0.1:PORT/'; the page is at `${url}app/index.html`. */
  url: string;
  /** The static server behind it: its requests, and faults to inject (paths like '/app/site/1.1.0/weights.bin'). */
  files: TestServer;
  /** Publishes the next version of the story (what the page's button and `POST /publish-next` do). */
  publishNext(): Promise<StoryStatus>;
  status(): StoryStatus;
  close(): Promise<void>;
}

/**
 * Serves `root` (the built page in `root/app`, its update site in `root/app/site`) and publishes 1.0.0.
 * @example
 * const server = await startExampleServer({ root, port: 8000 })
 * await server.publishNext() // 1.1.0
 */
export async function startExampleServer({
  root,
  port = 0,
  onPublish,
}: {
  root: string;
  port?: number;
  /** Called after each version is published (serve.ts prints it). */
  onPublish?: (step: StoryStep) => void;
}): Promise<ExampleServer> {
  const site = join(root, 'app', 'site');
  const files = await startTestServer({ root });
  const published: string[] = [];
  const status = (): StoryStatus => {
    const next = STORY[published.length];
    return { published: [...published], next: next ? { version: next.version, note: next.note } : null };
  };
  // One publish at a time: two quick clicks publish two versions, in order.
  let publishing: Promise<unknown> = Promise.resolve();
  const publishNext = (): Promise<StoryStatus> => {
    const run = publishing.then(async () => {
      const step = STORY[published.length];
      if (step) {
        await publishModel(site, step.version, step.model, step.padBytes);
        published.push(step.version);
        onPublish?.(step);
      }
      return status();
    });
    publishing = run.catch(() => undefined);
    return run;
  };
  await publishNext();

  const filesUrl = new URL(files.url);
  const server = http.createServer((req, res) => {
    const json = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    if (req.url === '/publish-next') {
      if (req.method === 'GET') return json(200, status());
      if (req.method !== 'POST') return json(405, { error: 'GET or POST' });
      publishNext().then(
        (answer) => json(200, answer),
        (error: Error) => json(500, { error: `publishing failed: ${error.message}` }),
      );
      return;
    }
    // Everything else is the static server's, headers and all (Range, If-None-Match, ...).
    const upstream = http.request({ host: filesUrl.hostname, port: filesUrl.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    // The page went away (a reload mid-download): drop the upstream request too.
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    files,
    publishNext,
    status,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        });
        await files.close();
      })();
      return closing;
    },
  };
}
