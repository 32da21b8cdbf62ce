/**
 * The error codes model-updater reports, and the plain, JSON-safe form of an error that the chart keeps in
 * its context and the event log records. Pure: the chart decides with these; src/errors.ts builds the
 * UpdateError class on them.
 */
export const ERROR_CODES = [
  'NETWORK_UNAVAILABLE',
  'SERVICE_UNAVAILABLE',
  'SERVICE_REJECTED',
  'DOWNLOAD_FAILED',
  'DOWNLOAD_STALLED',
  'SIZE_MISMATCH',
  'INSUFFICIENT_DISK_SPACE',
  'INTEGRITY_MISMATCH',
  'MANIFEST_INVALID',
  'SIGNATURE_INVALID',
  'ROLLBACK_REJECTED',
  'MANIFEST_EXPIRED',
  'MIGRATION_FAILED',
  'LOAD_FAILED',
  'HEALTH_CHECK_FAILED',
  /** A host hook (migrate, load, healthCheck, unload) passed its deadline (option hookTimeouts). */
  'HOOK_TIMEOUT',
  'SWITCH_FAILED',
  'ROLLBACK_UNAVAILABLE',
  'INTERRUPTED',
  'PROBATION_FAILED',
  /** The publisher withdrew the active version (`publish --pull`): the install rolled back from it. */
  'VERSION_PULLED',
  'LOCKED',
  'STORAGE_FAILED',
  'LOG_CORRUPT',
  /** The log holds records in a format (or of a kind) only a newer model-updater writes. */
  'LOG_TOO_NEW',
  /** A reader (readActive) found no active version: nothing is installed in the folder yet. */
  'NOT_INSTALLED',
  'CANCELLED',
  'INVALID_ARGUMENT',
  'UNKNOWN',
] as const;

export type UpdateErrorCode = (typeof ERROR_CODES)[number];

/** Codes after which the same request may succeed later without anyone changing anything. */
const TRANSIENT: ReadonlySet<UpdateErrorCode> = new Set([
  'NETWORK_UNAVAILABLE',
  'SERVICE_UNAVAILABLE',
  'DOWNLOAD_STALLED',
]);

/** The plain, JSON-safe form of an error: what the statechart stores and the event log records. */
export interface UpdateErrorData {
  code: UpdateErrorCode;
  message: string;
  /** Server-requested or computed wait before a retry, in milliseconds. */
  retryAfterMs?: number;
}

export function isTransientCode(code: UpdateErrorCode): boolean {
  return TRANSIENT.has(code);
}

function isErrorCode(value: unknown): value is UpdateErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * Turns anything thrown into the plain record the chart stores. Pure and idempotent, so a live error and
 * its journaled copy fold to the same context.
 */
export function toErrorData(error: unknown): UpdateErrorData {
  if (typeof error === 'object' && error !== null) {
    const { code, message, retryAfterMs } = error as Record<string, unknown>;
    const data: UpdateErrorData = {
      code: isErrorCode(code) ? code : 'UNKNOWN',
      message: typeof message === 'string' ? message : String(error),
    };
    if (typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs)) data.retryAfterMs = retryAfterMs;
    return data;
  }
  return { code: 'UNKNOWN', message: String(error) };
}
