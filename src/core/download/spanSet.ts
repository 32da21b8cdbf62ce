/**
 * A set of byte positions kept as sorted, disjoint [start, end) spans: what of a file is already
 * fetched (and durable), what is missing.
 */

/**
 * @example
 * const done = new SpanSet([[0, 100]]); done.add(100, 250); done.list() // [[0, 250]]
 * done.missing(1000) // [[250, 1000]]
 */
export class SpanSet {
  #spans: Array<[number, number]> = [];

  constructor(spans: ReadonlyArray<readonly [number, number]> = []) {
    for (const [start, end] of spans) this.add(start, end);
  }

  /** Adds [start, end), merged with the spans it touches. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const kept: Array<[number, number]> = [];
    let merged: [number, number] = [start, end];
    let placed = false;
    for (const span of this.#spans) {
      if (span[1] < merged[0]) kept.push(span);
      else if (span[0] > merged[1]) {
        if (!placed) kept.push(merged);
        placed = true;
        kept.push(span);
      } else merged = [Math.min(span[0], merged[0]), Math.max(span[1], merged[1])];
    }
    if (!placed) kept.push(merged);
    this.#spans = kept;
  }

  clear(): void {
    this.#spans = [];
  }

  /** A copy of the spans. */
  list(): Array<[number, number]> {
    return this.#spans.map(([start, end]) => [start, end]);
  }

  /** Bytes covered. */
  get size(): number {
    return this.#spans.reduce((sum, [start, end]) => sum + end - start, 0);
  }

  /** Where the span holding `position` ends; `position` itself when none holds it. */
  endOf(position: number): number {
    for (const [start, end] of this.#spans) if (start <= position && position < end) return end;
    return position;
  }

  /** The spans of [0, size) not in the set. */
  missing(size: number): Array<[number, number]> {
    const gaps: Array<[number, number]> = [];
    let at = 0;
    for (const [start, end] of this.#spans) {
      if (start >= size) break;
      if (start > at) gaps.push([at, start]);
      at = Math.max(at, end);
    }
    if (at < size) gaps.push([at, size]);
    return gaps;
  }
}
