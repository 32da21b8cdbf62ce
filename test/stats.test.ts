import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { SpanLike, TracerLike } from '../src/core/telemetry.js';
import { createWorld, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

/** A tracer that records what it is told, shaped like OpenTelemetry's. */
function recordingTracer() {
  const spans: Array<{ name: string; attributes: Record<string, unknown>; events: string[]; status?: { code: number }; ended: boolean }> = [];
  const tracer: TracerLike = {
    startSpan(name, options) {
      const span = { name, attributes: { ...options?.attributes }, events: [] as string[], status: undefined as { code: number } | undefined, ended: false };
      spans.push(span);
      const handle: SpanLike = {
        setAttribute: (key, value) => (span.attributes[key] = value),
        addEvent: (event) => span.events.push(event),
        setStatus: (status) => (span.status = status),
        end: () => (span.ended = true),
      };
      return handle;
    },
  };
  return { tracer, spans };
}

it('stats() and `model-updater stats` report outcomes, failure codes, downloads and time in state; a tracer gets a span per session', async () => {
  const { tracer, spans } = recordingTracer();
  await world.publishVersion('1.0.0', { bytes: 1_000_000 });
  const updater = world.updater({ tracer, loader: { load: (m) => m.version, healthCheck: (m) => m.version !== '1.2.0' } });
  await updater.start();
  await updater.check();
  await updater.check();
  await world.publishVersion('1.1.0');
  world.server.fault('/1.1.0/model.bin', { kind: 'corrupt', times: 1 });
  await updater.check();
  await world.publishVersion('1.2.0');
  await updater.check();

  const stats = updater.stats();
  expect(stats.sessions).toBe(4);
  expect(stats.outcomes).toEqual({ activated: 1, 'up-to-date': 1, failed: 1, 'rolled-back': 1 });
  expect(stats.successRate).toBeCloseTo(1 / 3);
  expect(stats.failuresByCode).toEqual({ INTEGRITY_MISMATCH: 1, HEALTH_CHECK_FAILED: 1 });
  expect(stats.downloads.map((d) => d.version)).toEqual(['1.0.0', '1.1.0', '1.2.0']);
  expect(stats.downloads[0]!.bytes).toBe(1_000_000);
  expect(stats.downloads[0]!.bytesPerSecond).toBeGreaterThan(0);
  // Small files come whole: each download fetched all of its bytes (test/chunkIndexDocument.test.ts has a differential one).
  expect(stats.downloads.map((d) => d.fetchedBytes)).toEqual(stats.downloads.map((d) => d.bytes));
  expect(Object.keys(stats.timeInState)).toEqual(expect.arrayContaining(['checking', 'downloading.fetching', 'migrating.checkingHealth']));
  expect(stats.bySession.map((s) => s.outcome)).toEqual(['activated', 'up-to-date', 'failed', 'rolled-back']);
  expect(stats.bySession.every((s) => s.durationMs !== null && s.durationMs >= 0)).toBe(true);

  expect(spans.map((s) => [s.attributes['model_updater.outcome'], s.status?.code, s.ended])).toEqual([
    ['activated', 1, true],
    ['up-to-date', 1, true],
    ['failed', 2, true],
    ['rolled-back', 2, true],
  ]);
  expect(spans[0]!.events).toEqual(expect.arrayContaining(['checking', 'downloading.fetching', 'verifying', 'active']));
  updater.stop();

  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'stats', '--dir', world.dir, '--json'], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' });
  expect(cli.status, cli.stderr).toBe(0);
  expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, sessions: 4, failuresByCode: { INTEGRITY_MISMATCH: 1, HEALTH_CHECK_FAILED: 1 } });
  const text = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'stats', '--dir', world.dir], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' });
  const total = stats.downloads.reduce((sum, d) => sum + d.bytes, 0);
  expect(text.stdout).toContain(`downloads: 3, median throughput`);
  expect(text.stdout).toContain(`, fetched ${total} of ${total} bytes`);
});
