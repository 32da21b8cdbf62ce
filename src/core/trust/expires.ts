/**
 * `--expires` values: an ISO 8601 date, or a duration from now (`30d`, `12h`, `45m`, `90s`).
 */
import { UpdateError } from '../errors.js';

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };

/**
 * The ISO instant an `--expires` value means.
 * @example
 * parseExpires('30d', Date.parse('2026-01-01T00:00:00Z')) // '2026-01-31T00:00:00.000Z'
 */
export function parseExpires(value: string, now: number): string {
  const duration = /^(\d+)([dhms])$/.exec(value.trim());
  const at = duration ? now + Number(duration[1]) * UNIT_MS[duration[2]!]! : Date.parse(value);
  if (!Number.isFinite(at) || (!duration && !/^\d{4}-\d{2}-\d{2}/.test(value.trim()))) {
    throw new UpdateError('INVALID_ARGUMENT', `--expires "${value}" is neither an ISO date (2027-01-31 or 2027-01-31T12:00:00Z) nor a duration like 30d, 12h.`);
  }
  if (at <= now) throw new UpdateError('INVALID_ARGUMENT', `--expires "${value}" is in the past; a manifest that is already expired would be refused by every client.`);
  return new Date(at).toISOString();
}
