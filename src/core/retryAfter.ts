/**
 * Parses an HTTP `Retry-After` value (seconds or an HTTP-date) into milliseconds from `now`.
 * @example
 * parseRetryAfter('120') // 120_000
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
