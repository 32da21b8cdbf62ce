/**
 * Rebuilds the statechart's snapshot from the log: a pure fold of the journaled events through xstate's
 * `initialTransition` / `transition`. No actor runs.
 */
import { initialTransition, transition, type EventObject, type SnapshotFrom } from 'xstate';
import { toErrorData } from '../errors.js';
import { updaterMachine } from '../../machines/updater.machine.js';
import type { UpdaterInput } from '../../machines/types.js';
import { META_PREFIX, type LogRecord } from './record.js';

export type UpdaterSnapshot = SnapshotFrom<typeof updaterMachine>;

export const INIT_EVENT = 'xstate.init';

/** The JSON-safe record data of an event: errors become their plain `{ code, message }` form. */
export function eventData(event: EventObject): Record<string, unknown> {
  const { type: _type, ...rest } = event as EventObject & Record<string, unknown>;
  if ('error' in rest) rest.error = toErrorData(rest.error);
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

export function recordEvent(record: LogRecord): EventObject {
  return { ...record.data, type: record.type };
}

/** Whether a record is a machine event (as opposed to the log's own bookkeeping). */
export function isMachineRecord(record: LogRecord): boolean {
  return !record.type.startsWith(META_PREFIX);
}

/**
 * Folds the records into a snapshot; null for a log that was never started.
 * @example
 * const snapshot = replay(readLogFile(path).records); snapshot?.value // e.g. 'active'
 */
export function replay(records: readonly LogRecord[], machine = updaterMachine): UpdaterSnapshot | null {
  let snapshot: UpdaterSnapshot | null = null;
  for (const record of records) {
    if (!isMachineRecord(record)) continue;
    if (record.type === INIT_EVENT) {
      [snapshot] = initialTransition(machine, record.data.input as UpdaterInput);
    } else if (snapshot) {
      [snapshot] = transition(machine, snapshot, recordEvent(record) as never);
    }
  }
  return snapshot;
}
