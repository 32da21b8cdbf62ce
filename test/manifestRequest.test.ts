/**
 * The manifest request against a real loopback server, with the default retry settings: one deadline
 * for the whole answer (a server that drips the body cannot hold the check or the folder), Retry-After
 * honoured whatever its length by the chart's journaled deferred check (no quick retries in place), and a
 * 4xx that is a refusal, not a download failure. Time is the simulated clock's.
 */
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from 'xstate';
import { createWorld, waitForSnapshot, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

const manifestRequests = () => world.server.requests.filter((request) => request.path.endsWith('manifest.json'));

/** An updater with the library's own retry settings (the fixture's default turns the chart's retries off). */
function defaultRetries(clock: SimulatedClock) {
  return world.updater({ clock, retry: {} });
}

describe('the manifest has one deadline for headers and body', () => {
  it('a server that sends the headers and then drips the body fails at the deadline as SERVICE_UNAVAILABLE, deferred, and the folder is free', async () => {
    await world.publishVersion('1.0.0');
    const clock = new SimulatedClock();
    const updater = defaultRetries(clock);
    await updater.start();
    // One byte every 200 ms: the few hundred bytes of the manifest would take about a minute.
    world.server.fault('/manifest.json', { kind: 'trickle', bytes: 1, intervalMs: 200, times: 1 });
    const check = updater.check();
    // The headers are out and the body has begun: the deadline must cover what follows.
    await vi.waitFor(() => expect(manifestRequests()[0]?.bytesSent).toBeGreaterThan(0), { timeout: 20_000, interval: 10 });
    clock.increment(29_999);
    expect(updater.getSnapshot().matches('checking')).toBe(true);
    clock.increment(1);
    const result = await check;
    expect(result).toMatchObject({ outcome: 'deferred', error: { code: 'SERVICE_UNAVAILABLE' } });
    expect(result.error!.message).toMatch(/the service sent the manifest too slowly/i);
    expect(result.error!.message).toContain('30 s');
    const dripped = manifestRequests()[0]!.bytesSent;

    // The deferred check runs after the chart's back-off (at most the 1 s base) and installs.
    clock.increment(1_000);
    await waitForSnapshot(updater, (s) => s.matches('active') && s.context.active?.version === '1.0.0');
    expect(manifestRequests()).toHaveLength(2);
    // The dripping connection was closed: it sent nothing more while the retry ran.
    expect(manifestRequests()[0]!.bytesSent).toBeLessThanOrEqual(dripped + 1);

    // The folder lock is free once the updater stops: another updater takes it at once.
    updater.stop();
    const next = world.updater();
    await next.start();
    expect(next.active?.version).toBe('1.0.0');
  });

  it('a server that drips its response headers one byte at a time fails at the same single deadline', async () => {
    // A raw TCP server: the status line, then one header byte every 100 ms, never the end of the headers.
    const sockets = new Set<net.Socket>();
    let sent = 0;
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 200 OK\r\n');
      const header = 'x-drip: ' + 'a'.repeat(10_000);
      let at = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || at >= header.length) return clearInterval(timer);
        socket.write(header[at++]!);
        sent++;
      }, 100);
      socket.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const clock = new SimulatedClock();
      const manifestUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/manifest.json`;
      const updater = world.updater({ clock, retry: {}, manifestUrl });
      await updater.start();
      const check = updater.check();
      await vi.waitFor(() => expect(sent).toBeGreaterThan(1), { timeout: 20_000, interval: 10 });
      clock.increment(30_000);
      const result = await check;
      expect(result).toMatchObject({ outcome: 'deferred', error: { code: 'SERVICE_UNAVAILABLE' } });
      expect(result.error!.message).toMatch(/too slowly/);
      updater.stop();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('Retry-After is honoured by the chart, whatever its length', () => {
  it('503 with Retry-After: 3600 is one request; the next comes after 3600 s of simulated time, journaled', async () => {
    await world.publishVersion('1.0.0');
    const clock = new SimulatedClock();
    const updater = defaultRetries(clock);
    await updater.start();
    world.server.fault('/manifest.json', { kind: 'status', status: 503, retryAfter: '3600', times: 1 });
    expect(await updater.check()).toMatchObject({ outcome: 'deferred', error: { code: 'SERVICE_UNAVAILABLE', retryAfterMs: 3_600_000 } });
    expect(manifestRequests()).toHaveLength(1);

    clock.increment(3_599_999);
    expect(manifestRequests()).toHaveLength(1);
    clock.increment(1);
    await waitForSnapshot(updater, (s) => s.matches('active') && s.context.active?.version === '1.0.0');
    expect(manifestRequests()).toHaveLength(2);

    // The log holds the refusal with its Retry-After, the timer that fired, and the second check.
    const types = updater.log.records().map((record) => record.type);
    const failed = types.indexOf('manifest.failed');
    expect(failed).toBeGreaterThan(-1);
    expect(updater.log.records()[failed]!.data).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE', retryAfterMs: 3_600_000 } });
    const fired = types.findIndex((type, i) => i > failed && type === 'deferral.ended');
    expect(fired).toBeGreaterThan(failed);
    expect(types.indexOf('manifest.accepted', fired)).toBeGreaterThan(fired);
  });

  it('a 503 storm without Retry-After costs one request per deferred check, not three', async () => {
    await world.publishVersion('1.0.0');
    const clock = new SimulatedClock();
    const updater = defaultRetries(clock);
    await updater.start();
    world.server.fault('/manifest.json', { kind: 'status', status: 503 });
    expect(await updater.check()).toMatchObject({ outcome: 'deferred', error: { code: 'SERVICE_UNAVAILABLE' } });
    expect(manifestRequests()).toHaveLength(1);
    // Four more deferred checks (maxCheckAttempts 5), each after its back-off (at most 5 min), then failed.
    for (let attempt = 2; attempt <= 5; attempt++) {
      clock.increment(5 * 60_000);
      await waitForSnapshot(updater, (s) => (s.matches({ idle: 'deferred' }) && s.context.session?.attempt === attempt) || s.context.lastResult?.outcome === 'failed');
      expect(manifestRequests()).toHaveLength(attempt);
    }
    expect(updater.getSnapshot().context.lastResult?.outcome).toBe('failed');
    expect(updater.getSnapshot().context.lastResult?.error?.code).toBe('SERVICE_UNAVAILABLE');
    expect(manifestRequests()).toHaveLength(5);
  });
});

describe('a 4xx on the manifest is a refusal', () => {
  for (const status of [401, 403, 404, 410]) {
    it(`${status} is SERVICE_REJECTED, not retried`, async () => {
      const clock = new SimulatedClock();
      const updater = defaultRetries(clock);
      await updater.start();
      world.server.fault('/manifest.json', { kind: 'status', status });
      const result = await updater.check();
      expect(result).toMatchObject({ outcome: 'failed', error: { code: 'SERVICE_REJECTED' } });
      expect(result.error!.message).toContain(`answered ${status}`);
      expect(result.error!.message).toMatch(status < 404 ? /credentials/ : /manifest URL/);
      expect(manifestRequests()).toHaveLength(1);
    });
  }
});
