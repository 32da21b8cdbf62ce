/**
 * What a failed IndexedDB call means to the user, for every browser adapter that stores something (the
 * model store and the staging area): one mapping, so a full quota reads the same wherever it happens.
 */
import { UpdateError } from '../core/errors.js';

/**
 * @example
 * try { await set(key, value, store) } catch (error) { throw idbStorageError('store the download', error) }
 */
export function idbStorageError(action: string, error: unknown): UpdateError {
  if (error instanceof UpdateError) return error;
  const quota = (error as DOMException)?.name === 'QuotaExceededError';
  return new UpdateError(
    quota ? 'INSUFFICIENT_DISK_SPACE' : 'STORAGE_FAILED',
    `Could not ${action} in IndexedDB: ${(error as Error)?.message ?? error}. ${quota ? 'Free some browser storage for this site' : 'Check that the site may use IndexedDB (not a private window with storage disabled)'}, then try again.`,
    { cause: error },
  );
}

/** Runs one IndexedDB step; whatever it throws reaches the caller as an UpdateError. */
export async function guardedIdb<T>(action: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw idbStorageError(action, error);
  }
}
