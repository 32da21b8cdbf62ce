/**
 * What a failed file-system call means to the user, for every store that writes files (Node's, the
 * download's, and the simulator's copy of them): one mapping, so a full disk or a planted symbolic
 * link reads the same wherever it happens.
 */
import { UpdateError } from './errors.js';

/**
 * @example
 * try { await writeFile(path, data) } catch (error) { throw storageError(error, `write ${path}`) }
 */
export function storageError(error: unknown, what: string): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT' || (error as Error | null)?.name === 'QuotaExceededError') {
    return new UpdateError('INSUFFICIENT_DISK_SPACE', `Could not ${what}: the disk is full. Free some space and try again.`, { cause: error });
  }
  if (code === 'ELOOP') {
    return new UpdateError('STORAGE_FAILED', `Refused to ${what}: it is a symbolic link, which could redirect the write elsewhere. Remove it; model-updater never creates links there.`, { cause: error });
  }
  return new UpdateError('STORAGE_FAILED', `Could not ${what} (${reason}); check that the folder exists and is writable.`, { cause: error });
}
