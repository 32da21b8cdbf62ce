/**
 * Which versions stay on disk. Pure, so the chart can plan it and the preflight can count what it frees.
 */
import type { InstalledVersion } from './types.js';

export interface RetentionPolicy {
  /** Versions kept, the active one included; at least 2 (active + the one to roll back to). */
  keepVersions: number;
  /** Bytes that retained versions other than the previous one may use (shared blobs count once). */
  maxRetainedBytes: number;
}

/** Bytes of the blobs `versions` hold that none of `others` holds: what removing them frees. */
export function exclusiveBytes(versions: readonly InstalledVersion[], others: readonly InstalledVersion[]): number {
  const kept = new Set(others.flatMap((v) => v.files.map((f) => f.sha256)));
  const counted = new Map<string, number>();
  for (const file of versions.flatMap((v) => v.files)) if (!kept.has(file.sha256)) counted.set(file.sha256, file.size);
  return [...counted.values()].reduce((sum, size) => sum + size, 0);
}

/**
 * The retained list after `next` becomes active, newest first: the version it replaces is always kept
 * (it is the rollback target); older ones while they fit the count and the byte budget. The bundled
 * model (`bundledPath`) is always kept and counts against neither: it lives in the app, not the folder.
 * @example
 * planRetention(next, current, retained, { keepVersions: 3, maxRetainedBytes: 5e9 }) // { retained, dropped }
 */
export function planRetention(
  next: InstalledVersion,
  current: InstalledVersion | null,
  retained: readonly InstalledVersion[],
  policy: RetentionPolicy,
): { retained: InstalledVersion[]; dropped: InstalledVersion[] } {
  const candidates = [current, ...retained].filter((v): v is InstalledVersion => v !== null && v.version !== next.version);
  const kept: InstalledVersion[] = [];
  // The stored versions kept so far: what the count and the byte budget apply to.
  const counted: InstalledVersion[] = [];
  const dropped: InstalledVersion[] = [];
  for (const version of candidates) {
    if (version.bundledPath !== undefined) {
      kept.push(version);
      continue;
    }
    const isPrevious = kept.length === 0;
    const fitsCount = counted.length < policy.keepVersions - 1;
    const fitsBudget = exclusiveBytes([...counted.slice(1), version], [next, ...counted.slice(0, 1)]) <= policy.maxRetainedBytes;
    if (isPrevious || (fitsCount && fitsBudget)) {
      kept.push(version);
      counted.push(version);
    } else dropped.push(version);
  }
  return { retained: kept, dropped };
}
