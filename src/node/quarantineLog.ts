/**
 * The way out of a damaged event log: set it aside and start a new chain, keeping the verified models.
 */
import { lstat, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { FileEventLog } from './fileEventLog.js';
import { META_PREFIX } from '../core/log/record.js';
import { LOG_FILE } from './fsModelStore.js';
import { fsyncFolder } from './durableWrite.js';
import { missingTail, type PlacedAnchor } from '../core/log/logAnchor.js';
import { clearLogAnchors, readLogAnchors } from './logAnchors.js';
import { readLogFile } from './fileEventLog.js';
import { listArchivedSegments, NEXT_SEGMENT, verifyLogFolder } from './logSegments.js';

export interface QuarantineReport {
  /** Where the damaged log now is. */
  movedTo: string;
  /** Why it was set aside. */
  reason: string;
  /** Where its archived segments now are (same suffix), oldest first. */
  archivedMovedTo?: string[];
}

/** Why a log cannot be used (a broken chain, or a tail cut off below its anchors), or null when it verifies. */
function damage(dir: string, anchors: PlacedAnchor[]): string | null {
  try {
    const result = verifyLogFolder(dir).verification;
    if (!result.ok) return `record ${result.seq} ${result.reason}`;
    const cut = missingTail(readLogFile(join(dir, LOG_FILE)).records, anchors);
    return cut === null ? null : `the log ${cut}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Moves `<dir>/events.log` aside (to `events.log.quarantined-<time>`, its archived segments likewise) and starts a new log whose first
 * record names it. The next start adopts the active version from the pointer; the quarantine list and
 * probation state of the old log are not carried over; the trust state (keys, serial, rotation) is, and the
 * chain-end anchors are cleared (the new log starts again). Refuses a log that verifies unless `force`.
 * @example
 * await quarantineLog('/var/lib/app/models') // then start the updater again
 */
export async function quarantineLog(dir: string, options: { force?: boolean; now?: () => number } = {}): Promise<QuarantineReport> {
  const now = options.now ?? Date.now;
  const path = join(dir, LOG_FILE);
  // Read first: a link planted at active.json or trust.json is refused before anything moves.
  const anchors = await readLogAnchors(dir);
  const reason = damage(dir, anchors);
  if (reason === null && !options.force) {
    throw new UpdateError('INVALID_ARGUMENT', `The event log in ${dir} verifies; there is nothing to quarantine. Pass --force to set it aside anyway.`);
  }
  const suffix = `.quarantined-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
  let movedTo = `${path}${suffix}`;
  // Every segment of the chain goes aside with it (and a rotation's unfinished next segment).
  const archivedMovedTo: string[] = [];
  for (const segment of listArchivedSegments(dir)) {
    await rename(segment.path, `${segment.path}${suffix}`);
    archivedMovedTo.push(`${segment.path}${suffix}`);
  }
  await rename(join(dir, NEXT_SEGMENT), `${join(dir, NEXT_SEGMENT)}${suffix}`).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  // A log deleted outright has nothing to move aside.
  const present = await lstat(path).then(() => true, () => false);
  if (present) await rename(path, movedTo);
  else movedTo = `nowhere (${path} was missing)`;
  await fsyncFolder(dir);
  const log = FileEventLog.open(path, now);
  log.append(`${META_PREFIX}quarantined`, null, { previous: movedTo, ...(archivedMovedTo.length ? { archived: archivedMovedTo } : {}), reason: reason ?? 'set aside on request' });
  await log.flush();
  log.close();
  // Last: cut off before this, the new log is refused as cut short, and quarantining again finishes the job.
  if (anchors.length) await clearLogAnchors(dir);
  return { movedTo, reason: reason ?? 'set aside on request', ...(archivedMovedTo.length ? { archivedMovedTo } : {}) };
}
