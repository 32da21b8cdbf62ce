/**
 * Replays a recorded event log through a live actor with an inspector attached, so a past update session
 * (from a user's machine, say) can be stepped through in the Stately inspector. Nothing runs: every
 * invoked actor is a stub that never settles and timers run on a clock that never advances, so the
 * chart moves only on the journaled events, exactly as `replay()` folds them.
 */
import { createActor, fromPromise, SimulatedClock, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { updaterMachine } from '../../machines/updater.machine.js';
import type { UpdaterInput } from '../../machines/types.js';
import type { LogRecord } from '../core/log/record.js';
import { chartEventOf, INIT_EVENT, isMachineRecord } from '../core/log/domainEvents.js';
import type { UpdaterSnapshot } from '../core/log/replay.js';

export type InspectTarget = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** The chart with every invoked actor replaced by one that never settles: results come from the log. */
function inertMachine(machine: typeof updaterMachine): typeof updaterMachine {
  const never = fromPromise(() => new Promise<never>(() => undefined));
  const actors = Object.fromEntries(Object.keys(machine.implementations.actors).map((name) => [name, never]));
  return machine.provide({ actors: actors as never });
}

/**
 * Feeds the records through the machine with `inspect` attached and returns the final snapshot (the
 * same as `replay(records)`), or null for a log that was never started. `records` may be any iterable,
 * e.g. `readAllRecords(dir)`, which reads a long log segment by segment instead of all at once. Each `updater.created` record starts
 * a new root actor, as a new process did. Inspectors that deliver later (`@statelyai/inspect` does, a
 * tick late) still receive everything after this returns.
 * @example
 * import { createBrowserInspector } from '@statelyai/inspect'
 * const inspector = createBrowserInspector()
 * replayIntoInspector(await readIdbLog('asr'), inspector.inspect)
 */
export function replayIntoInspector(records: Iterable<LogRecord>, inspect: InspectTarget, machine = updaterMachine): UpdaterSnapshot | null {
  const inert = inertMachine(machine);
  let actor: Actor<typeof updaterMachine> | undefined;
  let last: UpdaterSnapshot | null = null;
  for (const record of records) {
    if (!isMachineRecord(record)) continue;
    // The inspector sees the chart's own events: each domain event is translated back, as replay does.
    const event = chartEventOf(record);
    if (event.type === INIT_EVENT) {
      actor?.stop();
      actor = createActor(inert, { input: event.input as UpdaterInput, inspect, clock: new SimulatedClock() });
      actor.start();
    } else {
      actor?.send(event as never);
    }
    last = actor?.getSnapshot() ?? null;
  }
  actor?.stop();
  return last;
}
