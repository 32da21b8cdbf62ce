import { SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';
import { Pacer, RateBudget } from '../src/core/download/rateBudget.js';
import { UpdateError } from '../src/core/errors.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import os from 'node:os';
import path from 'node:path';
import type { Timers } from '../src/core/download/transferGuard.js';

const KIB = 1024;
const PIECE = 64 * KIB;

function simulatedTimers(clock: SimulatedClock): Timers {
  return { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (id) => clock.clearTimeout(id), now: () => clock.now() };
}

/**
 * Connections on a link much faster than any cap: every 5 ms of simulated time each one not paused
 * receives one piece. Returns the bytes received, per connection, by each whole second.
 */
function runLink(budget: RateBudget, timers: Timers, clock: SimulatedClock, connections: number, seconds: number, at?: (second: number) => void) {
  const received = Array.from({ length: connections }, () => 0);
  const paused = Array.from({ length: connections }, () => false);
  const pacers = received.map((_, i) => new Pacer(budget, timers, () => (paused[i] = false)));
  const bySecond: number[] = [];
  for (let ms = 0; ms < seconds * 1000; ms += 5) {
    if (ms % 1000 === 0) at?.(ms / 1000);
    for (let i = 0; i < connections; i++) {
      if (paused[i]) continue;
      received[i]! += PIECE;
      if (!pacers[i]!.take(PIECE)) paused[i] = true;
    }
    clock.increment(5);
    if ((ms + 5) % 1000 === 0) bySecond.push(received.reduce((sum, n) => sum + n, 0));
  }
  for (const pacer of pacers) pacer.dispose();
  return { received, bySecond };
}

describe('bandwidth cap', () => {
  it('paces the bytes of all connections together to the cap', () => {
    const clock = new SimulatedClock();
    const timers = simulatedTimers(clock);
    const rate = 5_000_000;
    const budget = new RateBudget(rate, timers);
    const { received, bySecond } = runLink(budget, timers, clock, 4, 10);
    const total = bySecond.at(-1)!;
    // Ten seconds at 5 MB/s, give or take the burst and one piece per connection.
    expect(Math.abs(total - 10 * rate)).toBeLessThan(rate * 0.25 + 4 * PIECE + 1);
    // Shared, not per connection: each got about a quarter.
    for (const bytes of received) expect(bytes / total).toBeGreaterThan(0.2);
  });

  it('a new cap set while bytes flow holds within a second; lifting it lets them run', () => {
    const clock = new SimulatedClock();
    const timers = simulatedTimers(clock);
    const budget = new RateBudget(4_000_000, timers);
    const { bySecond } = runLink(budget, timers, clock, 4, 8, (second) => {
      if (second === 3) budget.setRate(1_000_000);
      if (second === 6) budget.setRate(undefined);
    });
    const perSecond = bySecond.map((bytes, i) => bytes - (bySecond[i - 1] ?? 0));
    // Seconds 1-2 at 4 MB/s; second 4 onwards (the first whole second after the change) at 1 MB/s.
    for (const second of [1, 2]) expect(Math.abs(perSecond[second]! - 4_000_000)).toBeLessThan(4 * PIECE + 1);
    for (const second of [4, 5]) expect(Math.abs(perSecond[second]! - 1_000_000)).toBeLessThan(4 * PIECE + 1);
    // No cap: a piece per connection every 5 ms.
    expect(perSecond[7]).toBe(4 * PIECE * 200);
    expect(budget.bytesPerSecond).toBeUndefined();
  });

  it('asks the transport for pieces of about 20 ms of the cap (at least 16 KiB), and for its own size without a cap', () => {
    const clock = new SimulatedClock();
    const timers = simulatedTimers(clock);
    const budget = new RateBudget(5_000_000, timers);
    const pacer = new Pacer(budget, timers, () => undefined);
    expect(pacer.readBytes()).toBe(100_000);
    budget.setRate(200_000);
    expect(pacer.readBytes()).toBe(16 * KIB);
    budget.setRate(undefined);
    expect(pacer.readBytes()).toBeUndefined();
    expect(new Pacer(undefined, timers, () => undefined).readBytes()).toBeUndefined();
  });

  it('refuses a cap that is not a positive number', () => {
    const timers = simulatedTimers(new SimulatedClock());
    for (const bad of [0, -1, Number.NaN, Infinity, '5m' as unknown as number]) {
      expect(() => new RateBudget(bad, timers)).toThrow(UpdateError);
      expect(() => new RateBudget(1000, timers).setRate(bad)).toThrow(/maxBytesPerSecond must be a positive number/);
    }
  });

  it('is an updater option the host moves while it runs, checked like every option', () => {
    const dir = path.join(os.tmpdir(), 'model-updater-cap-never-created');
    const make = (download: object) => () => createModelUpdater({ dir, manifestUrl: 'http://127.0.0.1:9/manifest.json', allowUnsigned: true, download });
    expect(make({ maxBytesPerSecond: 0 })).toThrow(/download.maxBytesPerSecond must be a positive number/);
    expect(make({ connections: 0 })).toThrow(/download.connections must be a whole number from 1 to 64/);
    expect(make({ connections: 2.5 })).toThrow(UpdateError);
    const updater = make({ maxBytesPerSecond: 5_000_000 })();
    expect(updater.maxBytesPerSecond).toBe(5_000_000);
    updater.setMaxBytesPerSecond(500_000);
    expect(updater.maxBytesPerSecond).toBe(500_000);
    expect(() => updater.setMaxBytesPerSecond(-1)).toThrow(UpdateError);
    expect(updater.maxBytesPerSecond).toBe(500_000);
    updater.setMaxBytesPerSecond(undefined);
    expect(updater.maxBytesPerSecond).toBeUndefined();
  });
});
