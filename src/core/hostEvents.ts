/**
 * The typed events a host hears (`updater.on(...)`), read off two consecutive snapshots of the chart.
 */
import type { InstalledVersion } from '../../machines/types.js';
import { fromErrorData } from './errors.js';
import type { UpdaterSnapshot } from './log/replay.js';
import type { ModelRef } from './modelRef.js';
import type { UpdaterEvents } from './updaterApi.js';
import { statePath } from './statePath.js';

export type HostEvent = { [E in keyof UpdaterEvents]: [E, UpdaterEvents[E]] }[keyof UpdaterEvents];

/**
 * @example
 * for (const [name, payload] of hostEvents(before, after, refOf)) emit(name, payload)
 */
export function hostEvents(before: UpdaterSnapshot | undefined, after: UpdaterSnapshot, refOf: (installed: InstalledVersion) => ModelRef): HostEvent[] {
  const events: HostEvent[] = [];
  if (!before || statePath(before) !== statePath(after)) events.push(['state', { state: statePath(after) }]);
  const { lastResult, candidate } = after.context;
  if (candidate && before?.context.candidate?.version !== candidate.version && !after.matches('checking')) {
    events.push(['update-available', { version: candidate.version, notes: candidate.notes }]);
  }
  if (!lastResult || lastResult === before?.context.lastResult) return events;
  switch (lastResult.outcome) {
    case 'up-to-date':
      events.push(['update-not-available', { sessionId: lastResult.sessionId }]);
      break;
    case 'activated': {
      const active = after.context.active!;
      events.push(['activated', { version: active.version, previous: before?.context.active?.version ?? null, model: refOf(active) }]);
      break;
    }
    case 'rolled-back':
      events.push([
        'rolled-back',
        {
          version: after.context.active?.version ?? null,
          from: after.context.rollback?.from?.version ?? null,
          cause: lastResult.error ? fromErrorData(lastResult.error) : null,
        },
      ]);
      break;
    case 'failed':
      if (lastResult.error) events.push(['error', fromErrorData(lastResult.error)]);
      break;
  }
  return events;
}
