/**
 * A store whose failures are always UpdateErrors. Adapters type most of their errors, but a raw fs or
 * IndexedDB error (an EIO from `rm`, an ENOSPC from `mkdir`) must not reach the host or the log untyped.
 */
import { UpdateError } from './errors.js';
import { wrapStoreCalls, type ModelStore } from './ports/modelStore.js';

/** The UpdateError for anything a store threw: INSUFFICIENT_DISK_SPACE for a full disk, else STORAGE_FAILED. */
export function storageFailure(error: unknown, store: string, action: string): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const full = code === 'ENOSPC' || code === 'EDQUOT' || (error as Error | null)?.name === 'QuotaExceededError';
  return new UpdateError(
    full ? 'INSUFFICIENT_DISK_SPACE' : 'STORAGE_FAILED',
    `The model store in ${store} failed to ${action}: ${(error as Error)?.message ?? String(error)}. Check its free space and permissions.`,
    { cause: error },
  );
}

/**
 * @example
 * const store = typedStore(new FsModelStore(dir)); await store.collectGarbage([]) // rejects only with UpdateError
 */
export function typedStore(store: ModelStore): ModelStore {
  return wrapStoreCalls(store, (name, result) => result.catch((error: unknown) => Promise.reject(storageFailure(error, store.location, name))));
}
