import type { UpdaterSnapshot } from './log/replay.js';

/** The chart's current state as a dotted path, e.g. 'downloading.fetching'. */
export function statePath(snapshot: Pick<UpdaterSnapshot, 'value'>): string {
  const path: string[] = [];
  let value: unknown = snapshot.value;
  while (typeof value === 'object' && value !== null) {
    const [key, inner] = Object.entries(value)[0]!;
    path.push(key);
    value = inner;
  }
  path.push(String(value));
  return path.join('.');
}
