/**
 * The one error type model-updater throws or reports. Switch on `code`; read `message` for what to do.
 */
import { ERROR_CODES, isTransientCode, toErrorData, type UpdateErrorCode, type UpdateErrorData } from '../../machines/errorCodes.js';

export { ERROR_CODES, isTransientCode, toErrorData, type UpdateErrorCode, type UpdateErrorData };

export interface UpdateErrorOptions {
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * @example
 * try { await updater.check() } catch (e) { if (isUpdateError(e) && e.code === 'INSUFFICIENT_DISK_SPACE') ... }
 */
export class UpdateError extends Error {
  override readonly name = 'UpdateError';
  readonly code: UpdateErrorCode;
  readonly retryAfterMs: number | undefined;

  constructor(code: UpdateErrorCode, message: string, options: UpdateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }

  get transient(): boolean {
    return isTransientCode(this.code);
  }

  toJSON(): UpdateErrorData {
    return toErrorData(this);
  }
}

export function isUpdateError(error: unknown): error is UpdateError {
  return error instanceof UpdateError;
}

/** The reverse of toErrorData, for APIs that throw. */
export function fromErrorData(data: UpdateErrorData): UpdateError {
  return new UpdateError(data.code, data.message, data.retryAfterMs === undefined ? {} : { retryAfterMs: data.retryAfterMs });
}
