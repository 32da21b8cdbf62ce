/**
 * Rebuilds the statechart's snapshot from the log: a pure fold of the journaled events through xstate's
 * `initialTransition` / `transition`. No actor runs.
 */
import { initialTransition, transition, type EventObject, type SnapshotFrom } from 'xstate';
import { actorErrorData } from '../../../machines/failureCodes.js';
import { updaterMachine } from '../../../machines/updater.machine.js';
import type { UpdaterInput } from '../../../machines/types.js';
import { CHECKPOINT, META_PREFIX, type LogRecord } from './record.js';

export type UpdaterSnapshot = SnapshotFrom<typeof updaterMachine>;

export const INIT_EVENT = 'xstate.init';

/** The JSON-safe record data of an event: errors become their plain `{ code, message }` form. */
export function eventData(event: EventObject): Record<string, unknown> {
  const { type: _type, ...rest } = event as EventObject & Record<string, unknown>;
  // Typed by the failing actor, as the chart types it: no journaled error is UNKNOWN where the chart is not.
  if ('error' in rest) rest.error = actorErrorData(event as EventObject & { error?: unknown });
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

export function recordEvent(record: LogRecord): EventObject {
  return { ...record.data, type: record.type };
}

/** Whether a record is a machine event (as opposed to the log's own bookkeeping). */
export function isMachineRecord(record: LogRecord): boolean {
  return !record.type.startsWith(META_PREFIX);
}

/** Bumped whenever the chart's states or context change shape: older checkpoints are then ignored. */
export const SNAPSHOT_SCHEMA_VERSION = 1;

/** States a checkpoint may be taken in (tagged `checkpointable`): nothing is invoked and no timer runs there. */
export function isCheckpointable(snapshot: UpdaterSnapshot): boolean {
  return snapshot.hasTag('checkpointable');
}

export function checkpointData(snapshot: UpdaterSnapshot): Record<string, unknown> {
  return JSON.parse(JSON.stringify({ schemaVersion: SNAPSHOT_SCHEMA_VERSION, value: snapshot.value, context: snapshot.context }));
}

/**
 * The snapshot a checkpoint holds, or null when it cannot be trusted: another schema version, a state the
 * chart no longer has, or a state a checkpoint is never taken in. The caller then folds from further back.
 */
export function restoreCheckpoint(record: LogRecord, machine = updaterMachine): UpdaterSnapshot | null {
  const { schemaVersion, value, context } = record.data as { schemaVersion?: unknown; value?: unknown; context?: unknown };
  if (schemaVersion !== SNAPSHOT_SCHEMA_VERSION || typeof context !== 'object' || context === null) return null;
  try {
    const snapshot = machine.resolveState({ value: value as never, context: context as never });
    return snapshot.status === 'active' && isCheckpointable(snapshot) ? snapshot : null;
  } catch {
    return null;
  }
}

/**
 * Folds the records into a snapshot; null for a log that was never started. By default it starts from
 * the last valid checkpoint; `{ fromCheckpoint: false }` folds every record from the first.
 * @example
 * const snapshot = replay(readLogFile(path).records); snapshot?.value // e.g. 'active'
 */
export function replay(
  records: readonly LogRecord[],
  machine = updaterMachine,
  options: { fromCheckpoint?: boolean } = {},
): UpdaterSnapshot | null {
  let snapshot: UpdaterSnapshot | null = null;
  let start = 0;
  if (options.fromCheckpoint ?? true) {
    for (let index = records.length - 1; index >= 0 && snapshot === null; index--) {
      if (records[index]!.type !== CHECKPOINT) continue;
      snapshot = restoreCheckpoint(records[index]!, machine);
      start = index + 1;
    }
    if (snapshot === null) start = 0;
  }
  for (let index = start; index < records.length; index++) {
    const record = records[index]!;
    if (!isMachineRecord(record)) continue;
    if (record.type === INIT_EVENT) {
      [snapshot] = initialTransition(machine, record.data.input as UpdaterInput);
    } else if (snapshot) {
      [snapshot] = transition(machine, snapshot, recordEvent(record) as never);
    }
  }
  return snapshot;
}
