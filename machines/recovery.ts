/**
 * What start-up must do about the state the last process left: pure, so recovery is journaled and
 * replayed like any other step.
 */
import type { SnapshotFrom } from 'xstate';
import type { UpdaterConfig, UpdaterEvent } from './types.js';
import type { updaterMachine } from './updater.machine.js';

type Snapshot = SnapshotFrom<typeof updaterMachine>;

/**
 * The events that settle what the log left open:
 * - a changed host configuration (app version, channel, policy) is applied first;
 * - an update cut off in `migrating` before its switch is undone (its step in flight is not trusted);
 * - a restored wait lost its timer with the old process, so it ends now.
 * Downloads and verification need nothing: their actors run again on restore and resume.
 * @example
 * for (const event of recoveryEvents(snapshot, config)) [snapshot] = transition(updaterMachine, snapshot, event)
 */
export function recoveryEvents(snapshot: Snapshot, config: UpdaterConfig): UpdaterEvent[] {
  const events: UpdaterEvent[] = [];
  const changed = (Object.keys(config) as Array<keyof UpdaterConfig>).some(
    (key) => JSON.stringify(snapshot.context.config[key]) !== JSON.stringify(config[key]),
  );
  if (changed) events.push({ type: 'CONFIGURE', config });
  if (snapshot.hasTag('beforeSwitch')) events.push({ type: 'INTERRUPTED' });
  if (snapshot.hasTag('waiting')) events.push({ type: 'RETRY_NOW' });
  return events;
}
