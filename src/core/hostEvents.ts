/**
 * The typed events a host hears (`updater.on(...)`), translated from what the running chart emits
 * (`UpdaterEmitted`). A replayed log emits nothing, so a restart repeats no old outcome.
 */
import type { InstalledVersion, SkippedVersion, UpdaterEmitted } from '../../machines/types.js';
import { fromErrorData } from './errors.js';
import type { UpdaterSnapshot } from './log/replay.js';
import type { ModelRef } from './modelRef.js';
import type { UpdaterEvents } from './updaterApi.js';

export type HostEvent = { [E in keyof UpdaterEvents]: [E, UpdaterEvents[E]] }[keyof UpdaterEvents];

/**
 * The host event for one emitted by the chart; `snapshot` is the one the emitting transition led to.
 * @example
 * actor.on('*', (emitted) => emit(...hostEvent(emitted, actor.getSnapshot(), refOf)))
 */
export function hostEvent(
  emitted: UpdaterEmitted,
  snapshot: UpdaterSnapshot,
  refOf: (installed: InstalledVersion) => ModelRef,
  skippedOf: () => SkippedVersion[] = () => [],
): HostEvent {
  // Versions this host cannot run ride along on what a check found, when there are any.
  const skipped = () => {
    const list = skippedOf();
    return list.length ? { skipped: list } : {};
  };
  switch (emitted.type) {
    case 'update-available':
      return [
        'update-available',
        { version: emitted.version, notes: emitted.notes, size: emitted.size, ...(emitted.fetchBytes === undefined ? {} : { fetchBytes: emitted.fetchBytes }), ...skipped() },
      ];
    case 'update-not-available':
      return ['update-not-available', { sessionId: emitted.sessionId, ...skipped() }];
    case 'update-downloaded':
      return ['update-downloaded', { version: emitted.version }];
    case 'activated':
      return ['activated', { version: emitted.version, previous: emitted.previous, model: refOf(snapshot.context.active!) }];
    case 'rolled-back':
      return ['rolled-back', { version: emitted.version, from: emitted.from, cause: emitted.cause ? fromErrorData(emitted.cause) : null }];
    case 'failed':
      return ['error', fromErrorData(emitted.error)];
  }
}
