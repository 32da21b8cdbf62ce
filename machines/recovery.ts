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
  // An optional field (capabilities) the host no longer gives is cleared with null: absent and null agree.
  const held = snapshot.context.config;
  const keys = [...new Set([...Object.keys(held), ...Object.keys(config)])] as Array<keyof UpdaterConfig>;
  const changed = keys.some((key) => JSON.stringify(held[key] ?? null) !== JSON.stringify(config[key] ?? null));
  const cleared = Object.fromEntries(keys.filter((key) => config[key] === undefined).map((key) => [key, null]));
  if (changed) events.push({ type: 'CONFIGURE', config: { ...cleared, ...config } });
  if (snapshot.hasTag('beforeSwitch')) events.push({ type: 'INTERRUPTED' });
  if (snapshot.hasTag('waiting')) events.push({ type: 'RETRY_NOW' });
  return events;
}
