/**
 * The checkpoints of a download written at any offsets: the file is synced every CHECKPOINT_BYTES or a
 * second after the last sync, and what a sync made durable is recorded at once when the last record is
 * a second old, else a second after it. Time is a simulated clock.
 */
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_BYTES, Checkpoints, CHECKPOINT_INTERVAL_MS } from '../src/core/download/checkpoints.js';
import type { Timers } from '../src/core/download/transferGuard.js';
import type { ResumeRecord } from '../src/core/ports/stagingArea.js';

/** A simulated clock: timers fire only when the test advances it. */
function simulatedTimers() {
  let now = 0;
  const due = new Map<object, { at: number; fn: () => void }>();
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => {
      const id = {};
      due.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id: unknown) => void due.delete(id as object),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, timer] of [...due]) {
      if (timer.at > now) continue;
      due.delete(id);
      timer.fn();
    }
  };
  return { timers, advance, pending: () => due.size };
}

/** Lets the checkpoint's promise chain run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function checkpointsUnderTest() {
  const clock = simulatedTimers();
  const log: string[] = [];
  let spans: Array<[number, number]> = [];
  const checkpoints = new Checkpoints(
    async () => void log.push('sync'),
    async (record) => void log.push(`record ${JSON.stringify(record.completed)}`),
    (): ResumeRecord => ({ expectedSize: 100 * CHECKPOINT_BYTES, completed: spans.map(([a, b]) => [a, b]) }),
    clock.timers,
  );
  const write = (end: number) => {
    const start = spans.at(-1)?.[1] ?? 0;
    spans = [[0, end]];
    checkpoints.written(end - start);
  };
  return { clock, log, checkpoints, write };
}

describe('checkpoints of a download by ranges', () => {
  it('syncs every CHECKPOINT_BYTES but writes the record at most once a second: a fast download records once', async () => {
    const { log, write, clock } = checkpointsUnderTest();
    write(CHECKPOINT_BYTES - 1);
    await settle();
    expect(log).toEqual([]);
    write(CHECKPOINT_BYTES);
    await settle();
    expect(log).toEqual(['sync', `record [[0,${CHECKPOINT_BYTES}]]`]);
    // Three more syncs within the same second: no record yet, one waiting.
    for (const n of [2, 3, 4]) {
      clock.advance(100);
      write(n * CHECKPOINT_BYTES);
      await settle();
    }
    expect(log).toEqual(['sync', `record [[0,${CHECKPOINT_BYTES}]]`, 'sync', 'sync', 'sync']);
    expect(clock.pending()).toBe(1);
  });

  it('a download that stalls after a sync still gets its record, a second after the last one, with the newest durable spans', async () => {
    const { log, write, clock } = checkpointsUnderTest();
    write(CHECKPOINT_BYTES);
    await settle();
    clock.advance(200);
    write(2 * CHECKPOINT_BYTES);
    await settle();
    clock.advance(200);
    write(3 * CHECKPOINT_BYTES);
    await settle();
    expect(log.filter((entry) => entry.startsWith('record'))).toHaveLength(1);
    // Nothing more arrives; at 1 s after the first record the newest synced spans are recorded.
    clock.advance(CHECKPOINT_INTERVAL_MS - 401);
    await settle();
    expect(log.filter((entry) => entry.startsWith('record'))).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(log.at(-1)).toBe(`record [[0,${3 * CHECKPOINT_BYTES}]]`);
    expect(clock.pending()).toBe(0);
  });

  it('bytes written during a sync start the next sync when it ends, though nothing more is written (a connection that stalls)', async () => {
    const clock = simulatedTimers();
    const log: string[] = [];
    let finishSync!: () => void;
    const checkpoints = new Checkpoints(
      () => new Promise<void>((resolve) => (log.push('sync'), (finishSync = resolve))),
      async (record) => void log.push(`record ${JSON.stringify(record.completed)}`),
      (): ResumeRecord => ({ expectedSize: 0, completed: [[0, written]] }),
      clock.timers,
    );
    let written = 0;
    const write = (bytes: number) => ((written += bytes), checkpoints.written(bytes));
    write(CHECKPOINT_BYTES);
    await settle();
    write(CHECKPOINT_BYTES); // while the first sync runs
    await settle();
    expect(log).toEqual(['sync']);
    finishSync();
    await settle();
    expect(log).toEqual(['sync', `record [[0,${CHECKPOINT_BYTES}]]`, 'sync']);
    finishSync();
    clock.advance(CHECKPOINT_INTERVAL_MS);
    await settle();
    expect(log.at(-1)).toBe(`record [[0,${2 * CHECKPOINT_BYTES}]]`);
  });

  it('on a slow link, a second after the last sync what was written is synced and recorded, though nothing more comes', async () => {
    const { log, write, clock } = checkpointsUnderTest();
    write(100 * 1024);
    await settle();
    clock.advance(CHECKPOINT_INTERVAL_MS - 1);
    await settle();
    expect(log).toEqual([]);
    clock.advance(1);
    await settle();
    expect(log).toEqual(['sync', `record [[0,${100 * 1024}]]`]);
    // The next second: the next bytes, the same way.
    write(200 * 1024);
    clock.advance(CHECKPOINT_INTERVAL_MS);
    await settle();
    expect(log).toEqual(['sync', `record [[0,${100 * 1024}]]`, 'sync', `record [[0,${200 * 1024}]]`]);
  });

  it('idle() waits for the sync under way and drops a record still waiting for its time (the caller writes its own)', async () => {
    const { log, write, clock, checkpoints } = checkpointsUnderTest();
    write(CHECKPOINT_BYTES);
    await settle();
    clock.advance(10);
    write(2 * CHECKPOINT_BYTES);
    await checkpoints.idle();
    expect(log).toEqual(['sync', `record [[0,${CHECKPOINT_BYTES}]]`, 'sync']);
    expect(clock.pending()).toBe(0);
    clock.advance(CHECKPOINT_INTERVAL_MS);
    await settle();
    expect(log).toHaveLength(3);
  });
});
