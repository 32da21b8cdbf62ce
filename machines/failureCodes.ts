/**
 * The code an actor's failure carries when what it threw was not an UpdateError: one table, used by the
 * chart and by the journal, so a live error and its journaled copy fold to the same context.
 */
import { toErrorData, type UpdateErrorCode, type UpdateErrorData } from './errorCodes.js';

export const ACTOR_FAILURE_CODES: Record<string, UpdateErrorCode> = {
  fetchManifest: 'NETWORK_UNAVAILABLE',
  checkConditions: 'UNKNOWN',
  checkDiskSpace: 'INSUFFICIENT_DISK_SPACE',
  downloadVersion: 'DOWNLOAD_FAILED',
  verifyStaged: 'INTEGRITY_MISMATCH',
  stageVersion: 'STORAGE_FAILED',
  runMigration: 'MIGRATION_FAILED',
  loadModel: 'LOAD_FAILED',
  checkHealth: 'HEALTH_CHECK_FAILED',
  switchActive: 'SWITCH_FAILED',
  restoreVersion: 'ROLLBACK_UNAVAILABLE',
};

const ERROR_EVENT = 'xstate.error.actor.';

/**
 * The plain error of an `xstate.error.actor.<id>` event, typed by the failing actor when it was untyped.
 * @example
 * actorErrorData({ type: 'xstate.error.actor.loadModel', error: new Error('bad weights') }).code // 'LOAD_FAILED'
 */
export function actorErrorData(event: { type: string; error?: unknown }): UpdateErrorData {
  const data = toErrorData(event.error);
  if (data.code !== 'UNKNOWN' || !event.type.startsWith(ERROR_EVENT)) return data;
  const code = ACTOR_FAILURE_CODES[event.type.slice(ERROR_EVENT.length)] ?? 'UNKNOWN';
  return { ...data, code };
}
