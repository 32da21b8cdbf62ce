import { describe, expect, it } from 'vitest';
import { ConnectionProbe, PROBE_BYTES, PROBE_MS } from '../src/core/download/connectionProbe.js';
import type { Timers } from '../src/core/download/transferGuard.js';

/** A clock that moves only when told. */
function manualClock() {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const clock: Timers = {
    now: () => now,
    setTimeout(fn: () => void, ms: number) {
      const timer = { at: now + ms, fn };
      timers.push(timer);
      return timer;
    },
    clearTimeout(id: unknown) {
      const index = timers.indexOf(id as (typeof timers)[number]);
      if (index >= 0) timers.splice(index, 1);
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (const timer of timers.filter((t) => t.at <= now)) {
      timers.splice(timers.indexOf(timer), 1);
      timer.fn();
    }
  };
  return { clock, advance, pending: () => timers.length };
}

describe('ConnectionProbe', () => {
  it('opens the other connections when the first has not brought PROBE_BYTES within PROBE_MS', () => {
    const { clock, advance } = manualClock();
    let received = 1000;
    let opened = 0;
    const probe = new ConnectionProbe(clock, () => received, () => opened++);
    probe.start();
    received += PROBE_BYTES - 1;
    advance(PROBE_MS - 1);
    expect(opened).toBe(0);
    advance(1);
    expect(opened).toBe(1);
    expect(probe.slow).toBe(true);
    expect(probe.fast).toBe(false);
  });

  it('keeps the first connection alone when PROBE_BYTES came in time, decided as soon as they are there', () => {
    const { clock, advance, pending } = manualClock();
    let received = 0;
    let opened = 0;
    const probe = new ConnectionProbe(clock, () => received, () => opened++);
    probe.start();
    advance(PROBE_MS - 1);
    expect(probe.fast).toBe(false);
    received = PROBE_BYTES;
    expect(probe.fast).toBe(true);
    expect(pending()).toBe(0);
    advance(PROBE_MS);
    expect(opened).toBe(0);
  });

  it('a timer that finds PROBE_BYTES arrived decides fast too; dispose leaves no timer behind', () => {
    const { clock, advance, pending } = manualClock();
    let received = 0;
    let opened = 0;
    const probe = new ConnectionProbe(clock, () => received, () => opened++);
    probe.start();
    received = PROBE_BYTES;
    advance(PROBE_MS);
    expect(opened).toBe(0);
    expect(probe.fast).toBe(true);
    const other = new ConnectionProbe(clock, () => 0, () => opened++);
    other.start();
    other.dispose();
    expect(pending()).toBe(0);
    advance(PROBE_MS);
    expect(opened).toBe(0);
  });
});
