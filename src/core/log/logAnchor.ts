/**
 * The end of the hash chain, anchored outside the log: the active pointer and the trust state record
 * the last record's sequence number and hash when they are written (at a switch, a checkpoint, an
 * accepted manifest). A log cut back at a record boundary still chains, but no longer reaches its anchor.
 */
import type { LogRecord } from './record.js';

/** The last record of the log when an anchor was written. */
export interface LogHead {
  seq: number;
  hash: string;
}

/** An anchor and where it was found, for messages ("the active pointer"). */
export interface PlacedAnchor {
  head: LogHead;
  where: string;
}

/** Whether a value read from disk is a well-formed LogHead. */
export function isLogHead(value: unknown): value is LogHead {
  const head = value as LogHead;
  return typeof head === 'object' && head !== null && Number.isSafeInteger(head.seq) && head.seq >= 0 && typeof head.hash === 'string' && /^[0-9a-f]{64}$/.test(head.hash);
}

/** The head of a log: its last record's seq and hash, or null for an empty log. */
export function headOf(records: readonly LogRecord[]): LogHead | null {
  const last = records[records.length - 1];
  return last ? { seq: last.seq, hash: last.hash } : null;
}

/**
 * Why the log does not reach one of its anchors, or null when it does. Only the records held are
 * compared (an older segment may have been dropped by retention): an anchor before the first record
 * held counts as reached.
 * @example
 * const damage = missingTail(log.records(), [{ head: pointer.logHead, where: 'the active pointer' }])
 * if (damage) throw new UpdateError('LOG_CORRUPT', `The event log ${damage}. ...`)
 */
export function missingTail(records: readonly LogRecord[], anchors: ReadonlyArray<PlacedAnchor | null | undefined>): string | null {
  const last = records[records.length - 1];
  const first = records[0]?.seq ?? 0;
  for (const anchor of anchors) {
    if (!anchor) continue;
    const { head, where } = anchor;
    if (!last || last.seq < head.seq) {
      const ends = last ? `ends at record ${last.seq}` : 'is empty';
      return `${ends}, but ${where} says it reached record ${head.seq}: its tail was removed (${last ? `records ${last.seq + 1} to ${head.seq}` : 'every record'} missing)`;
    }
    if (head.seq < first) continue;
    const held = records[head.seq - first]?.seq === head.seq ? records[head.seq - first] : records.find((record) => record.seq === head.seq);
    if (held && held.hash !== head.hash) {
      return `has another record ${head.seq} than ${where} names (hash ${held.hash.slice(0, 12)} instead of ${head.hash.slice(0, 12)}): its tail was cut and rewritten`;
    }
  }
  return null;
}
