/**
 * The write-ahead rule between the event log and the store. The log writes each record at once but
 * syncs it to disk later, in groups (see FileEventLog): so before any step that cannot be undone, the
 * records that led to it must be durable. Those steps are the store calls below: the active-pointer
 * switch and a rollback's restore (`writePointer`), and removing versions (`removeVersion`,
 * `collectGarbage`). Rotation syncs inside the log itself.
 */
import type { ModelStore } from '../ports/modelStore.js';

const IRREVERSIBLE = new Set<keyof ModelStore>(['writePointer', 'removeVersion', 'collectGarbage']);

/**
 * The store, with every irreversible call made only after `flush()` (the log's) resolved.
 * @example
 * const store = writeAheadStore(typedStore(platform.store), () => journal.log.flush?.())
 */
export function writeAheadStore(store: ModelStore, flush: () => Promise<void> | undefined): ModelStore {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || !IRREVERSIBLE.has(name as keyof ModelStore)) return value;
      return async (...args: unknown[]) => {
        await flush();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
