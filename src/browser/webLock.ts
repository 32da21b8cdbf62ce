/**
 * Cross-tab exclusion with the Web Locks API: one updater per store name across every tab and worker of
 * the origin, so two tabs never download into or switch the same store at once.
 */
import { UpdateError } from '../core/errors.js';

/**
 * Takes the named lock if it is free and holds it until the returned release function is called.
 * Without a LockManager (an old browser, or Node) it takes nothing and releases nothing.
 * @example
 * const release = await holdLock(navigator.locks, 'model-updater:asr'); try { ... } finally { release() }
 */
export function holdLock(locks: LockManager | undefined, name: string): Promise<() => void> {
  if (!locks) return Promise.resolve(() => undefined);
  return new Promise((resolve, reject) => {
    let release!: () => void;
    const held = new Promise<void>((done) => (release = done));
    locks
      .request(name, { ifAvailable: true }, async (lock) => {
        if (!lock) {
          reject(new UpdateError('LOCKED', `Another tab or worker of this site is running the updater for "${name}". Use that one, or close it and start again.`));
          return;
        }
        resolve(release);
        await held;
      })
      .catch(reject);
  });
}
