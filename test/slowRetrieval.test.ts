/**
 * The slow-retrieval defense of model files at its DEFAULT settings, with minutes driven by a simulated
 * clock: one deadline for the response head that bytes do not move, a minimum throughput counted on
 * bytes as they arrive (a slow but honest 50 KB/s link passes, a byte every two seconds fails within two
 * minutes), the partial file kept for the next attempt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SimulatedClock } from 'xstate';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile } from '../src/core/download/downloadFile.js';
import type { Timers } from '../src/core/download/transferGuard.js';
import { UpdateError } from '../src/core/errors.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import type { StagingArea } from '../src/core/ports/stagingArea.js';
import type { Transport } from '../src/core/ports/transport.js';
import { MemoryModelStore, MemoryUpdateService, memoryTransport, SimulatedProcess } from '../src/testing/index.js';

const STAGED = { version: '1.0.0', path: 'model.bin' };
let tmp: string;
let clock: SimulatedClock;
let timers: Timers;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-slow-'));
  clock = new SimulatedClock();
  timers = { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (id) => clock.clearTimeout(id as number), now: () => clock.now() };
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Watched {
  transport: Transport;
  /** When (on the simulated clock) the download gave up on its request. */
  abortedAt(): number | undefined;
  /** Whether the download asked for the body: from then on it waits for nothing but the clock. */
  receiving(): boolean;
  /** Whether the body ended (complete or not): what is left is the staging's own writes. */
  ended(): boolean;
}

function watched(transport: Transport): Watched {
  let abortedAt: number | undefined;
  let receiving = false;
  let ended = false;
  return {
    abortedAt: () => abortedAt,
    receiving: () => receiving,
    ended: () => ended,
    transport: {
      async get(request) {
        request.signal.addEventListener('abort', () => (abortedAt ??= clock.now()), { once: true });
        const response = await transport.get(request);
        return {
          ...response,
          receive(sink) {
            receiving = true;
            return response.receive(sink).finally(() => (ended = true));
          },
        };
      },
    },
  };
}

/**
 * Moves the simulated clock `stepMs` at a time, letting the download run between steps, until it
 * settles, gives up on its request, or `limitMs` passed. `at`: when it settled or gave up.
 */
async function drive<T>(pending: Promise<T>, { abortedAt, receiving, ended }: Watched, stepMs: number, limitMs: number): Promise<{ value?: T; error?: UpdateError; at: number }> {
  let outcome: { value?: T; error?: UpdateError; at: number } | undefined;
  pending.then(
    (value) => (outcome = { value, at: clock.now() }),
    (error: UpdateError) => (outcome = { error, at: abortedAt() ?? clock.now() }),
  );
  // The request and the staging's own writes take real time; the clock starts with the body.
  while (outcome === undefined && !receiving()) await turn();
  while (outcome === undefined && !ended() && abortedAt() === undefined && clock.now() < limitMs) {
    clock.increment(stepMs);
    for (let i = 0; i < 3; i++) await turn();
  }
  // Writes to a real disk finish on their own time; a body still flowing at the limit is an outcome too.
  while (outcome === undefined && (ended() || abortedAt() !== undefined)) await turn();
  return outcome ?? { at: clock.now() };
}

/** The simulator's update service with one file, served `bytes` at a time every `everyMs`. */
function tricklingService(size: number, trickle: { bytes: number; everyMs: number }) {
  const service = new MemoryUpdateService(new SimulatedProcess(), clock);
  const content = randomBytes(size);
  service.publish('1.0.0', { 'model.bin': content });
  service.faults = { trickle };
  return { watch: watched(memoryTransport(service)), content, url: new URL('1.0.0/model.bin', service.manifestUrl).href };
}

const stagingAreas: Array<[string, () => StagingArea]> = [
  ['the memory disk', () => new MemoryModelStore().staging],
  ['files through 1 MiB slots', () => new FileStagingArea(tmp)],
];

describe('minimum throughput, default settings', () => {
  it.each(stagingAreas)('a slow but honest 50 KB/s server completes (%s)', async (_name, makeStaging) => {
    const { watch, content, url } = tricklingService(3_000_000, { bytes: 5_000, everyMs: 100 });
    const staging = makeStaging();

    const { value, error, at } = await drive(downloadFile({ url, file: STAGED, expectedSize: content.length, transport: watch.transport, staging, timers }), watch, 100, 10 * 60_000);

    expect(error).toBeUndefined();
    expect(value?.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(at).toBeGreaterThanOrEqual(59_000);
  });

  it.each(stagingAreas)('a server trickling one byte every 2 s fails with DOWNLOAD_STALLED within 2 minutes, the partial file kept (%s)', async (_name, makeStaging) => {
    const { watch, content, url } = tricklingService(10_000, { bytes: 1, everyMs: 2_000 });
    const staging = makeStaging();

    const { error, at } = await drive(downloadFile({ url, file: STAGED, expectedSize: content.length, transport: watch.transport, staging, timers }), watch, 1_000, 10 * 60_000);

    expect(error?.code).toBe('DOWNLOAD_STALLED');
    expect(error?.message).toMatch(/below the minimum of 1024 B\/s/);
    expect(at).toBeLessThanOrEqual(120_000);
    const kept = await staging.size(STAGED);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(100);
    expect(await staging.readRecord(STAGED)).toMatchObject({ expectedSize: content.length });
  });
});

describe('minimum throughput, counted as bytes arrive', () => {
  it('a 50 KB/s server passes a 10 KB/s minimum over 10 s, though a 1 MiB slot of the file takes 20 s to fill', async () => {
    const { watch, content, url } = tricklingService(1_500_000, { bytes: 5_000, everyMs: 100 });

    const { value, error } = await drive(
      downloadFile({ url, file: STAGED, expectedSize: content.length, transport: watch.transport, staging: new FileStagingArea(tmp), timers, limits: { minBytesPerSecond: 10_000, throughputWindowMs: 10_000 } }),
      watch,
      100,
      10 * 60_000,
    );

    expect(error).toBeUndefined();
    expect(value?.sha256).toBe(createHash('sha256').update(content).digest('hex'));
  });
});

describe('the response head', () => {
  it('has one deadline that a server dripping the head byte by byte does not move', async () => {
    let dripped = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        // One byte of a head that never ends, then a simulated second, for as long as the client listens.
        const head = Buffer.from(`HTTP/1.1 200 OK\r\nX-Slow: ${'a'.repeat(10_000)}`);
        const next = (): void => {
          if (socket.destroyed || dripped >= head.length) return;
          socket.write(head.subarray(dripped, ++dripped), () => {
            clock.increment(1_000);
            setImmediate(next);
          });
        };
        next();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.bin`;
      const staging = new FileStagingArea(tmp);
      const error = (await downloadFile({ url, file: STAGED, expectedSize: 1_000, transport: createNodeTransport(), staging, timers }).catch((e: unknown) => e)) as UpdateError;

      expect(error.code).toBe('DOWNLOAD_STALLED');
      expect(error.message).toMatch(/did not send the response headers within 30000 ms/);
      expect(clock.now()).toBeLessThanOrEqual(31_000);
      expect(dripped).toBeGreaterThanOrEqual(30);
    } finally {
      server.close();
    }
  });
});
