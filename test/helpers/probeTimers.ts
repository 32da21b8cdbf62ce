/**
 * Real timers, except the connection probe's (connectionProbe.ts): it fires only when the test says,
 * so whether a download's extra connections open does not depend on how fast loopback is today.
 * Never fired, the first connection counts as fast once it has PROBE_BYTES; fired before that, as slow.
 *
 * @example
 * const probe = probeTimers()
 * await fetchSpans({ ..., timers: probe.timers, onBytes: () => probe.fire() }) // slow: the others open
 */
import { PROBE_MS } from '../../src/core/download/connectionProbe.js';
import { REAL_TIMERS, type Timers } from '../../src/core/download/transferGuard.js';

export function probeTimers(): { timers: Timers; fire: () => void; started: () => number } {
  const pending = new Map<object, () => void>();
  let started = 0;
  const timers: Timers = {
    now: () => REAL_TIMERS.now(),
    setTimeout(fn: () => void, ms: number) {
      if (ms !== PROBE_MS) return REAL_TIMERS.setTimeout(fn, ms);
      const id = {};
      pending.set(id, fn);
      started++;
      return id;
    },
    clearTimeout(id: unknown) {
      if (typeof id === 'object' && id !== null && pending.delete(id)) return;
      REAL_TIMERS.clearTimeout(id);
    },
  };
  const fire = () => {
    for (const [id, fn] of [...pending]) {
      pending.delete(id);
      fn();
    }
  };
  return { timers, fire, started: () => started };
}
