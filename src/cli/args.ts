/**
 * Argument parsing errors as INVALID_ARGUMENT, naming the flag.
 */
import { UpdateError } from '../core/errors.js';

/** Runs node:util's parseArgs (passed in as a thunk, to keep its inferred types) with a clear error. */
export function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UpdateError('INVALID_ARGUMENT', `${(error as Error).message}. Run \`model-updater help\` for usage.`);
  }
}

export function required(value: string | undefined, flag: string): string {
  if (!value) throw new UpdateError('INVALID_ARGUMENT', `${flag} is required. Run \`model-updater help\` for usage.`);
  return value;
}
