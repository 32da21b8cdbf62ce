/**
 * A store whose failures are always UpdateErrors. Adapters type most of their errors, but a raw fs or
 * IndexedDB error (an EIO from `rm`, an ENOSPC from `mkdir`) must not reach the host or the log untyped.
 */
import { wrapStoreCalls, type ModelStore } from './ports/modelStore.js';
import { storageError } from './storageError.js';

/**
 * @example
 * const store = typedStore(new FsModelStore(dir)); await store.collectGarbage([]) // rejects only with UpdateError
 */
export function typedStore(store: ModelStore): ModelStore {
  return wrapStoreCalls(store, (name, result) => result.catch((error: unknown) => Promise.reject(storageError(error, `${name} in the model store ${store.location}`))));
}
