/**
 * The inspector: live inspection from the Node updater (a plain callback and @statelyai/inspect's
 * headless inspector), replay of a recorded log into an inspector, and `model-updater log --inspect`
 * against a WebSocket server on 127.0.0.1.
 */
import { runCli } from './helpers/runCli.js';
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { createBrowserInspector, createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { InspectionEvent } from 'xstate';
import { isUpdateError } from '../src/index.js';
import { replayIntoInspector, connectWebSocketInspector, startInspectorRelay } from '../src/inspect/index.js';
import { replay, isMachineRecord } from '../src/core/log/replay.js';
import { chartEventOf } from '../src/core/log/domainEvents.js';
import { createWorld, plain, type World } from './helpers/fixtures.js';
import { freePort } from './helpers/freePort.js';
import { chromium } from 'playwright-core';
import { CHROMIUM, chromiumProgram } from './helpers/systemPrograms.js';
import { writeLongLog } from './helpers/longLog.js';
import { listArchivedSegments, readAllRecords } from '../src/node/logSegments.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

/** 1.0.0 installed, then 1.1.0 fails its health check and is rolled back. */
async function updateAndRollBack(inspect?: (event: InspectionEvent) => void) {
  await world.publishVersion('1.0.0', { bytes: 4_000 });
  const updater = world.updater({
    ...(inspect ? { inspect } : {}),
    loader: { load: (model) => model.version, healthCheck: (model) => model.version !== '1.1.0' },
  });
  await updater.start();
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  await world.publishVersion('1.1.0', { bytes: 4_000 });
  expect(await updater.check()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
  return updater;
}

/** `model-updater log --dir <dir> --inspect --port <free> --no-open --json` in a child, once it has printed its summary. */
async function serveInspector(dir: string) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'log', '--dir', dir, '--inspect', '--port', String(port), '--no-open', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  await vi.waitFor(() => expect(stdout).toContain('\n'), { timeout: 90_000, interval: 50 });
  const summary = JSON.parse(stdout) as { ok: boolean; records: number; events: number; state: string };
  return { port, child, exited, summary };
}

/** A page (a WebSocket client) that connects after the replay has ended, until it has `count` events. */
async function pageReceives(port: number, count: number): Promise<StatelyInspectionEvent[]> {
  const page = new WebSocket(`ws://127.0.0.1:${port}`);
  const received: StatelyInspectionEvent[] = [];
  page.on('message', (data) => received.push(JSON.parse(data.toString())));
  try {
    await vi.waitFor(() => expect(received.length).toBe(count), { timeout: 30_000, interval: 20 });
  } finally {
    page.close();
  }
  return received;
}

describe('live inspection', () => {
  it('a plain callback sees every event the chart receives and its snapshots', async () => {
    const seen: InspectionEvent[] = [];
    const updater = await updateAndRollBack((event) => seen.push(event));
    const root = seen.find((e) => e.type === '@xstate.actor')!.actorRef;
    const rootEvents = seen.filter((e) => e.type === '@xstate.event' && e.actorRef === root).map((e) => (e as { event: { type: string } }).event.type);
    // The log holds domain events; each stands for exactly the chart event the inspector saw.
    const journaled = updater.log.records().filter(isMachineRecord);
    expect(rootEvents).toEqual(journaled.map((r) => chartEventOf(r).type));
    expect(journaled.map((r) => r.type)).toContain('health.failed');
    const states = seen.filter((e) => e.type === '@xstate.snapshot' && e.actorRef === root).map((e) => JSON.stringify((e as any).snapshot.value));
    expect(states).toContain('"rolledBack"');
  });

  it("@statelyai/inspect's inspector receives actor, event and snapshot events from the Node updater", async () => {
    const captured: StatelyInspectionEvent[] = [];
    const inspector = createInspector({ send: (event) => captured.push(event) });
    await updateAndRollBack((event) => inspector.inspect.next?.(event));
    // Delivered a tick later: wait for the condition, not for a time.
    await vi.waitFor(() => expect(captured.some((e) => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'rolledBack')).toBe(true));
    const root = captured.find((e) => e.type === '@xstate.actor' && e.definition)!;
    expect(JSON.parse(root.type === '@xstate.actor' ? root.definition! : '{}').id).toBe('updater');
    expect(captured.some((e) => e.type === '@xstate.event' && e.event.type === 'CHECK')).toBe(true);
  });
});

describe('the inspector relay', () => {
  it('a live updater inspected through startInspectorRelay: a page connecting afterwards gets every event, the definition first', async () => {
    const relay = await startInspectorRelay({ port: 0 });
    try {
      expect(relay.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      const socket = await connectWebSocketInspector(relay.url);
      await updateAndRollBack(socket.inspect.next!.bind(socket.inspect));
      await socket.close();
      expect(relay.events).toBe(socket.sent);
      const page = new WebSocket(relay.url);
      const received: StatelyInspectionEvent[] = [];
      page.on('message', (data) => received.push(JSON.parse(data.toString())));
      await vi.waitFor(() => expect(received.length).toBe(socket.sent), { timeout: 10_000, interval: 20 });
      page.close();
      expect(received[0]).toMatchObject({ type: '@xstate.actor', definition: expect.stringContaining('"id":"updater"') });
      // The page it serves holds everything until the inspector app says it is ready.
      const html = await (await fetch(relay.pageUrl)).text();
      expect(html).toContain("new WebSocket('ws://' + location.host)");
      expect(html).toContain('<iframe id="inspector" src="https://stately.ai/inspect">');
    } finally {
      await relay.close();
    }
  });

  it('refuses WebSocket connections from other web pages, so a site open in the same browser cannot read the log', async () => {
    const relay = await startInspectorRelay({ port: 0 });
    try {
      const port = new URL(relay.url).port;
      const connects = (url: string, origin?: string) =>
        new Promise<boolean>((resolve) => {
          const socket = new WebSocket(url, origin ? { origin } : {});
          socket.once('open', () => (socket.close(), resolve(true)));
          socket.once('error', () => resolve(false));
        });
      expect(await connects(relay.url)).toBe(true); // a Node producer sends no Origin
      expect(await connects(relay.url, relay.pageUrl)).toBe(true); // the relay's own page
      expect(await connects(`ws://localhost:${port}`, `http://localhost:${port}`)).toBe(true); // the same, by name (a forwarded port)
      expect(await connects(relay.url, 'https://example.com')).toBe(false);
      expect(await connects(relay.url, `http://evil.example:${port}`)).toBe(false);
    } finally {
      await relay.close();
    }
  });

  it("@statelyai/inspect's createInspectorServer hands a late page only the last 200 events", async () => {
    const port = await freePort();
    const server = createInspectorServer({ port, autoOpen: false });
    const producer = new WebSocket(`ws://localhost:${port}`);
    try {
      await new Promise((resolve, reject) => producer.once('open', resolve).once('error', reject));
      for (let index = 0; index < 300; index++) producer.send(JSON.stringify({ index }));
      const page = new WebSocket(`ws://localhost:${port}`);
      const received: Array<{ index: number }> = [];
      page.on('message', (data) => received.push(JSON.parse(data.toString())));
      await new Promise((resolve) => page.once('open', resolve));
      producer.send(JSON.stringify({ index: 300 })); // arrives after what the server held for the page
      await vi.waitFor(() => expect(received.at(-1)?.index).toBe(300), { timeout: 10_000, interval: 20 });
      expect(received.length).toBe(201);
      expect(received[0]!.index).toBe(100);
      page.terminate();
    } finally {
      producer.terminate();
      server.stop();
    }
  });
});

describe('replay into the inspector', () => {
  it("@statelyai/inspect's browser inspector holds the last 200 events for a window that loads late; with maxDeferredEvents: Infinity, all of them, the definition first", async () => {
    await writeLongLog(world, 500);
    const records = [...readAllRecords(world.dir)];
    let forwarded = 0; // actor, event and snapshot inspection events: what @statelyai/inspect passes on
    replayIntoInspector(records, (event) => (forwarded += ['@xstate.actor', '@xstate.event', '@xstate.snapshot'].includes(event.type) ? 1 : 0));
    expect(forwarded).toBeGreaterThan(1_000);

    /** A page whose inspector popup says it is ready only after the whole replay; what the popup got. */
    const lateWindow = async (options: { maxDeferredEvents?: number }) => {
      const posted: StatelyInspectionEvent[] = [];
      const page = Object.assign(new EventTarget(), { open: () => ({ postMessage: (event: StatelyInspectionEvent) => posted.push(event) }) });
      const inspector = createBrowserInspector({ window: page as never, ...options });
      replayIntoInspector(records, inspector.inspect);
      await new Promise<void>((resolve) => setTimeout(resolve, 0)); // queued after the inspector's own deliveries (setTimeout 0 each, in order)
      expect(posted).toEqual([]);
      page.dispatchEvent(new MessageEvent('message', { data: { type: '@statelyai.connected' } }));
      return posted;
    };
    const defaults = await lateWindow({});
    expect(defaults.length).toBe(200);
    expect(defaults.some((e) => e.type === '@xstate.actor' && e.definition?.includes('"id":"updater"'))).toBe(false);
    const all = await lateWindow({ maxDeferredEvents: Infinity });
    expect(all.length).toBe(forwarded);
    expect(all[0]).toMatchObject({ type: '@xstate.actor', definition: expect.stringContaining('"id":"updater"') });
  });

  it('steps a recorded log through the chart with nothing running and ends on the same snapshot as replay()', async () => {
    const updater = await updateAndRollBack();
    const records = updater.log.records();
    const requestsBefore = world.server.requests.length;
    const seen: InspectionEvent[] = [];
    const final = replayIntoInspector(records, (event) => seen.push(event));
    expect(plain(final!)).toEqual(plain(replay(records)!));
    expect(plain(final!)).toEqual(plain(updater.getSnapshot()));
    // Every journaled event was delivered to the root actor, in order, and no actor touched the network.
    const root = seen.find((e) => e.type === '@xstate.actor')!.actorRef;
    const delivered = seen.filter((e) => e.type === '@xstate.event' && e.actorRef === root).map((e) => (e as { event: { type: string } }).event.type);
    // The inspector is sent the chart's own events, translated from the log's domain events.
    expect(delivered).toEqual(records.filter(isMachineRecord).map((r) => chartEventOf(r).type));
    expect(delivered).toContain('xstate.error.actor.checkHealth');
    expect(world.server.requests.length).toBe(requestsBefore);
  });

  it('returns null for an empty log', () => {
    expect(replayIntoInspector([], () => undefined)).toBeNull();
  });
});

describe('model-updater log --inspect', () => {
  let server: WebSocketServer | undefined;
  afterEach(async () => {
    for (const client of server?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });


  it('replays the log to an inspector server over a WebSocket and exits', async () => {
    const updater = await updateAndRollBack();
    updater.stop();
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    const received: StatelyInspectionEvent[] = [];
    server.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(data.toString()))));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const result = await runCli(['log', '--dir', world.dir, '--inspect', url, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ ok: true, state: 'rolledBack' });
    await vi.waitFor(() => expect(received.length).toBe(summary.events));
    expect(received.some((e) => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'rolledBack')).toBe(true);
    expect(received.some((e) => e.type === '@xstate.actor' && e.definition)).toBe(true);
  });

  it('with no URL, serves an inspector that hands the whole replay, definition first, to a page connecting later, until Ctrl-C', async () => {
    const updater = await updateAndRollBack();
    updater.stop();
    const served = await serveInspector(world.dir);
    try {
      expect(served.summary).toMatchObject({ ok: true, state: 'rolledBack' });
      const received = await pageReceives(served.port, served.summary.events);
      expect(received[0]).toMatchObject({ type: '@xstate.actor', definition: expect.stringContaining('"id":"updater"') });
      expect(received.some((e) => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'rolledBack')).toBe(true);
    } finally {
      served.child.kill('SIGINT');
    }
    expect(await served.exited).toBe(0);
  });

  it('a page connecting late to a 10,000-record log, read segment by segment, gets the definition first and every event', async () => {
    const records = await writeLongLog(world, 10_000);
    expect(records).toBeGreaterThan(10_000);
    expect(listArchivedSegments(world.dir).length).toBe(1);
    const served = await serveInspector(world.dir);
    try {
      expect(served.summary).toMatchObject({ ok: true, records, state: 'rolledBack' });
      const received = await pageReceives(served.port, served.summary.events);
      expect(received.length).toBe(served.summary.events);
      expect(received[0]).toMatchObject({ type: '@xstate.actor', definition: expect.stringContaining('"id":"updater"') });
      // Every journaled event of every run reached the page, in order: the whole story, not its last 200.
      const machineRecords = [...readAllRecords(world.dir)].filter(isMachineRecord);
      const delivered = received.filter((e) => e.type === '@xstate.event' && !e.sourceId).map((e) => (e as { event: { type: string } }).event.type);
      const expected = machineRecords.map((r) => chartEventOf(r).type).filter((type) => type !== 'xstate.init');
      expect(delivered.filter((type) => type !== 'xstate.init')).toEqual(expected);
      expect(received.at(-1)).toMatchObject({ type: '@xstate.snapshot' });
      expect(received.some((e) => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'rolledBack')).toBe(true);
    } finally {
      served.child.kill('SIGINT');
    }
    expect(await served.exited).toBe(0);
  }, 150_000);

  it('refuses a --port that is not a TCP port, saying what to give', async () => {
    const result = await runCli(['log', '--dir', world.dir, '--inspect', '--port', '80x', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('1 to 65535') });
  });

  it('says so when the port to serve the inspector on is taken, instead of crashing', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const result = await runCli(['log', '--dir', world.dir, '--inspect', '--port', String(port), '--no-open', '--json']);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: `Port ${port} is in use; serve the inspector on another one with --port.` });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('fails at once, without retrying, when no inspector listens', async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const error = await connectWebSocketInspector(`ws://127.0.0.1:${port}`).catch((e) => e);
    expect(isUpdateError(error) && error.code).toBe('NETWORK_UNAVAILABLE');
    expect(error.message).toMatch(/Start one/);
  });
});

const browserProgram = chromiumProgram();

describe.skipIf(browserProgram.skip)('the relay page in Chromium', () => {
  it('holds every event until the inspector app in its frame is ready, then hands it all of them, the definition first', async () => {
    browserProgram.require();
    await writeLongLog(world, 300);
    const relay = await startInspectorRelay({ port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const socket = await connectWebSocketInspector(relay.url);
      replayIntoInspector(readAllRecords(world.dir), socket.inspect);
      await socket.close();
      expect(relay.events).toBeGreaterThan(600);

      // The Stately app stands in here for the real one (no network): it keeps what it is sent and says
      // it is ready only when told to, long after the relay's page has received every event.
      const context = await browser.newContext();
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith(relay.pageUrl)) return route.continue();
        if (url === 'https://stately.ai/inspect') {
          return route.fulfill({
            contentType: 'text/html',
            body: '<script>window.received = []; addEventListener("message", (e) => received.push(e.data)); window.ready = () => parent.postMessage({ type: "@statelyai.connected" }, "*");</script>',
          });
        }
        return route.abort();
      });
      const page = await context.newPage();
      await page.goto(relay.pageUrl);
      const app = () => page.frames().find((frame) => frame.url() === 'https://stately.ai/inspect')!;
      await vi.waitFor(() => expect(app()).toBeDefined(), { timeout: 10_000, interval: 50 });
      // The relay's page has every event, held: the app has none yet.
      await vi.waitFor(async () => expect(await page.evaluate('held.length')).toBe(relay.events), { timeout: 20_000, interval: 50 });
      expect(await app().evaluate(() => (window as unknown as { received: unknown[] }).received.length)).toBe(0);
      await app().evaluate(() => (window as unknown as { ready(): void }).ready());
      await vi.waitFor(async () => expect(await app().evaluate(() => (window as unknown as { received: unknown[] }).received.length)).toBe(relay.events), { timeout: 20_000, interval: 50 });
      const first = await app().evaluate(() => (window as unknown as { received: StatelyInspectionEvent[] }).received[0]);
      expect(first).toMatchObject({ type: '@xstate.actor', definition: expect.stringContaining('"id":"updater"') });
    } finally {
      await browser.close();
      await relay.close();
    }
  }, 90_000);
});
