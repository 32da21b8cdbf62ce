/**
 * Rebuilds the statechart's snapshot from the log: a pure fold of the journaled domain events, translated
 * to chart events (domainEvents.ts), through xstate's `initialTransition` / `transition`. No actor runs.
 */
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import { updaterMachine } from '../../../machines/updater.machine.js';
import type { UpdaterInput } from '../../../machines/types.js';
import { CHECKPOINT, type LogRecord } from './record.js';
import { chartEventOf, INIT_EVENT, isMachineRecord } from './domainEvents.js';

export { eventData, INIT_EVENT, isMachineRecord } from './domainEvents.js';

export type UpdaterSnapshot = SnapshotFrom<typeof updaterMachine>;

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
    // Domain events (0.1.0 records upcast) become chart events in one place; an unknown one throws.
    const event = chartEventOf(record);
    if (event.type === INIT_EVENT) {
      [snapshot] = initialTransition(machine, event.input as UpdaterInput);
    } else if (snapshot) {
      [snapshot] = transition(machine, snapshot, event as never);
    }
  }
  return snapshot;
}
