/**
 * When the event log rotates to a new segment and how many archived segments it keeps.
 */
import { UpdateError } from '../errors.js';
import type { LogSegmentOptions } from '../ports/eventLog.js';

export type ResolvedSegmentOptions = Required<LogSegmentOptions>;

/** The defaults: about 4 MiB or 10,000 records a segment, 16 archived segments kept. */
export const DEFAULT_SEGMENT_OPTIONS: ResolvedSegmentOptions = {
  segmentRecords: 10_000,
  segmentBytes: 4 * 1024 * 1024,
  retainSegments: 16,
};

/**
 * The options with defaults filled in; refuses values that are not positive (retainSegments may be 0).
 * @example
 * resolveSegmentOptions({ segmentRecords: 1000 }).retainSegments // 16
 */
export function resolveSegmentOptions(options: LogSegmentOptions = {}): ResolvedSegmentOptions {
  const resolved = { ...DEFAULT_SEGMENT_OPTIONS };
  for (const key of Object.keys(DEFAULT_SEGMENT_OPTIONS) as Array<keyof ResolvedSegmentOptions>) {
    const value = options[key];
    if (value === undefined) continue;
    const min = key === 'retainSegments' ? 0 : 1;
    if (typeof value !== 'number' || Number.isNaN(value) || value < min || (Number.isFinite(value) && !Number.isInteger(value))) {
      throw new UpdateError('INVALID_ARGUMENT', `log.${key} must be a whole number of at least ${min} (or Infinity), got ${String(value)}; fix the updater's log option.`);
    }
    resolved[key] = value;
  }
  return resolved;
}
