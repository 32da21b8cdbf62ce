/**
 * The way out of a damaged event log: set it aside and start a new chain, keeping the verified models.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { FileEventLog, readLogFile } from './fileEventLog.js';
import { META_PREFIX, verifyLog } from '../core/log/record.js';
import { fsyncFolder, LOG_FILE } from './fsModelStore.js';

export interface QuarantineReport {
  /** Where the damaged log now is. */
  movedTo: string;
  /** Why it was set aside. */
  reason: string;
}

/** Why a log cannot be used, or null when it verifies. */
function damage(path: string): string | null {
  try {
    const result = verifyLog(readLogFile(path).records);
    return result.ok ? null : `record ${result.seq} ${result.reason}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Moves `<dir>/events.log` aside (to `events.log.quarantined-<time>`) and starts a new log whose first
 * record names it. The next start adopts the active version from the pointer; the quarantine list and
 * probation state of the old log are not carried over. Refuses a log that verifies unless `force`.
 * @example
 * await quarantineLog('/var/lib/app/models') // then start the updater again
 */
export async function quarantineLog(dir: string, options: { force?: boolean; now?: () => number } = {}): Promise<QuarantineReport> {
  const now = options.now ?? Date.now;
  const path = join(dir, LOG_FILE);
  const reason = damage(path);
  if (reason === null && !options.force) {
    throw new UpdateError('INVALID_ARGUMENT', `The event log in ${dir} verifies; there is nothing to quarantine. Pass --force to set it aside anyway.`);
  }
  const movedTo = `${path}.quarantined-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
  await rename(path, movedTo);
  await fsyncFolder(dir);
  const log = FileEventLog.open(path, now);
  log.append(`${META_PREFIX}quarantined`, null, { previous: movedTo, reason: reason ?? 'set aside on request' });
  log.close();
  return { movedTo, reason: reason ?? 'set aside on request' };
}
