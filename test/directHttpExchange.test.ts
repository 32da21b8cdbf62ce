import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadToPath } from './helpers/downloadToPath.js';
import { parseResponseHead } from '../src/node/responseHead.js';
import { startTestServer } from './helpers/testServer.js';
import { TEST_TLS } from './helpers/testTls.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';

let tmp: string;
const rawServers: net.Server[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-direct-'));
});

afterEach(async () => {
  await Promise.all(rawServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await rm(tmp, { recursive: true, force: true });
});

interface RawServer {
  url: string;
  /** Connections accepted so far: one per request, since every answer closes its connection. */
  connections(): number;
}

/** A TCP server that answers every request with `answer(n)` (n: the connection's number, from 1), in the given pieces. */
async function rawServer(answer: (connection: number) => Buffer[]): Promise<RawServer> {
  let connections = 0;
  const server = net.createServer((socket) => {
    const connection = ++connections;
    let request = '';
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      request += data.toString('latin1');
      if (!request.includes('\r\n\r\n')) return;
      socket.removeAllListeners('data');
      const pieces = answer(connection);
      const next = (): void => {
        const piece = pieces.shift();
        if (piece === undefined) return void socket.end();
        socket.write(piece, () => setImmediate(next));
      };
      next();
    });
  });
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.bin`, connections: () => connections };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What node:http reads from the same bytes: the status, reason and fields, or the error it raises. */
async function readWithNodeHttp(head: string): Promise<{ status: number; statusText: string; headers: Record<string, string> } | 'error'> {
  const server = await rawServer(() => [Buffer.from(head, 'latin1')]);
  return new Promise((resolve) => {
    const request = http.get(server.url, { agent: false }, (response) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', headers });
      response.resume();
    });
    request.on('error', () => resolve('error'));
  });
}

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const fieldValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);
const plainField = fc.tuple(token, fc.constantFrom(':', ': ', ':\t', ':  '), fieldValue, fc.constantFrom('', ' ', '\t'));
/** Lines node:http may treat differently from a plain field: the reader must never accept them silently. */
const oddLine = fc.constantFrom('X-Folded: a\r\n b', 'X-Space : a', 'X-Bare: a\nX-Next: b', 'Content-Length: 5', 'Location: /a', 'Location: /b', 'X-Ctl: a\x01b', 'no colon', ': empty name');

describe('the direct transport', () => {
  it('reads a head only when node:http reads the same status and fields from it', async () => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 200, max: 599 }),
        fc.constantFrom('', ' OK', ' Partial Content', ' Weird  Reason\t'),
        fc.array(fc.oneof({ weight: 4, arbitrary: plainField.map(([name, colon, value, tail]) => `${name}${colon}${value}${tail}`) }, { weight: 1, arbitrary: oddLine }), { maxLength: 8 }),
        async (status, reason, lines) => {
          const fields = lines.filter((line) => !/^(content-length|transfer-encoding|connection)\s*:/i.test(line) || line === 'Content-Length: 5');
          const head = [`HTTP/1.1 ${status}${reason}`, ...fields, 'Connection: close', ''].join('\r\n') + '\r\n';
          const ours = parseResponseHead(head);
          if (ours === undefined) return; // declined: node:http answers this one
          compared++;
          const theirs = await readWithNodeHttp(head);
          expect(theirs).not.toBe('error');
          if (theirs === 'error') return;
          expect(ours.status).toBe(theirs.status);
          expect(ours.statusText).toBe(theirs.statusText);
          expect({ ...ours.headers }).toEqual(theirs.headers);
        },
      ),
      { numRuns: 80 },
    );
    // Most generated heads are plain: the property must have compared many, not declined them all.
    expect(compared).toBeGreaterThan(30);
  });

  it('declines a head with a field named __proto__, which node:http drops, so node:http reads it (found by the property above)', async () => {
    const head = 'HTTP/1.1 200 OK\r\n__proto__: !\r\nContent-Length: 5\r\nConnection: close\r\n\r\n';
    expect(parseResponseHead(head)).toBeUndefined();
    const theirs = await readWithNodeHttp(head);
    expect(theirs).not.toBe('error');
    expect(Object.keys((theirs as { headers: Record<string, string> }).headers).sort()).toEqual(['connection', 'content-length']);
  });

  it('reads no more at once than the sink asks for (a bandwidth cap wants small pieces), down to 16 KiB', async () => {
    const body = randomBytes(3 * 1024 * 1024);
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1');
    const server = await rawServer(() => [Buffer.concat([head, body])]);
    const transport = createNodeTransport();
    for (const [asked, largest] of [[20_000, 20_000], [1_000, 16 * 1024]] as const) {
      const response = await transport.get({ url: new URL(server.url), headers: {}, signal: new AbortController().signal });
      const pieces: Buffer[] = [];
      await response.receive({ readBytes: () => asked, write: (bytes) => (pieces.push(Buffer.from(bytes)), true) });
      expect(Buffer.concat(pieces).equals(body)).toBe(true);
      expect(Math.max(...pieces.map((piece) => piece.length))).toBeLessThanOrEqual(largest);
    }
  });

  it('takes one request for a plain response, read in pieces, and ignores bytes past its Content-Length', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nETag: "v1"\r\n\r\n`, 'latin1');
    // The head split mid-line, the body in uneven pieces, then bytes that belong to no response.
    const server = await rawServer(() => [head.subarray(0, 9), head.subarray(9, 30), head.subarray(30), body.subarray(0, 1000), body.subarray(1000), Buffer.from('garbage after the body')]);
    const partPath = path.join(tmp, 'model.bin.part');
    const result = await downloadToPath({ url: server.url, partPath, expectedSize: body.length });
    expect(result.sha256).toBe(sha256(body));
    expect((await readFile(partPath)).equals(body)).toBe(true);
    expect(server.connections()).toBe(1);
  });

  it('reads the same bytes however the response is cut into pieces on the wire', async () => {
    const body = randomBytes(300_000);
    const whole = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nETag: "x"\r\n\r\n`, 'latin1'), body]);
    let cuts: number[] = [];
    const server = await rawServer(() => {
      const pieces: Buffer[] = [];
      let start = 0;
      for (const cut of [...cuts, whole.length]) {
        pieces.push(whole.subarray(start, cut));
        start = cut;
      }
      return pieces;
    });
    await fc.assert(
      // Half the cuts land in or near the head, where the reader has to put lines back together.
      fc.asyncProperty(fc.uniqueArray(fc.oneof(fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: whole.length - 1 })), { maxLength: 12 }), async (points) => {
        cuts = [...points].sort((a, b) => a - b);
        const partPath = path.join(tmp, 'pieces.part');
        await rm(partPath, { force: true });
        const before = server.connections();
        const result = await downloadToPath({ url: server.url, partPath, expectedSize: body.length });
        expect(result.sha256).toBe(sha256(body));
        expect(server.connections() - before).toBe(1);
      }),
      { numRuns: 25 },
    );
  });

  it('declines a chunked body, and the download asks node:http instead: two requests, the right bytes', async () => {
    const body = randomBytes(200_000);
    const chunked = Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
      Buffer.from(`${(100_000).toString(16)}\r\n`),
      body.subarray(0, 100_000),
      Buffer.from(`\r\n${(100_000).toString(16)}\r\n`),
      body.subarray(100_000),
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    const server = await rawServer(() => [chunked]);
    const result = await downloadToPath({ url: server.url, partPath: path.join(tmp, 'chunked.part'), expectedSize: body.length });
    expect(result.sha256).toBe(sha256(body));
    expect(server.connections()).toBe(2);
  });

  it('keeps what arrived when the peer closes inside the body, so the next attempt resumes it', async () => {
    const body = randomBytes(500_000);
    const server = await rawServer((connection) =>
      connection === 1
        ? [Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body.subarray(0, 123_456)]
        : [Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 123456-${body.length - 1}/${body.length}\r\nContent-Length: ${body.length - 123_456}\r\n\r\n`), body.subarray(123_456)],
    );
    const partPath = path.join(tmp, 'resume.part');
    await expect(downloadToPath({ url: server.url, partPath, expectedSize: body.length })).rejects.toMatchObject({ code: 'NETWORK_UNAVAILABLE' });
    expect((await stat(partPath)).size).toBe(123_456);
    const result = await downloadToPath({ url: server.url, partPath, expectedSize: body.length });
    expect(result).toMatchObject({ resumedFrom: 123_456, bytesFetched: body.length - 123_456, sha256: sha256(body) });
  });

  it('reads https the same way, in one request, trusting an extra CA', async () => {
    const root = path.join(tmp, 'www');
    await mkdir(root);
    const body = randomBytes(6 * 1024 * 1024 + 5);
    await writeFile(path.join(root, 'model.bin'), body);
    const server = await startTestServer({ root, tls: TEST_TLS });
    try {
      const partPath = path.join(tmp, 'tls.part');
      const result = await downloadToPath({ url: `${server.url}model.bin`, partPath, expectedSize: body.length, ca: TEST_TLS.cert });
      expect(result.sha256).toBe(sha256(body));
      expect((await readFile(partPath)).equals(body)).toBe(true);
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
