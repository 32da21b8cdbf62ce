/**
 * One line of the event log and the hash chain that binds the lines together.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

export interface LogRecord {
  /** 0, 1, 2, ... with no gaps. */
  seq: number;
  /** ISO-8601 wall-clock time the record was written. */
  ts: string;
  /** Update session the record belongs to, or null outside a session. */
  session: string | null;
  /** The event type (`CHECK`, `xstate.done.actor.downloadVersion`, ...) or a `log.*` bookkeeping type. */
  type: string;
  data: Record<string, unknown>;
  /** Hash of the previous record; GENESIS for the first. */
  prev: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

/** Records the log writes about itself; replay skips them. */
export const META_PREFIX = 'log.';

/** A snapshot of the chart chained into the log, so start-up folds only what came after it. */
export const CHECKPOINT = `${META_PREFIX}checkpoint`;

/** Index of the last checkpoint record, or -1. */
export function lastCheckpoint(records: readonly LogRecord[]): number {
  for (let index = records.length - 1; index >= 0; index--) if (records[index]!.type === CHECKPOINT) return index;
  return -1;
}

/**
 * SHA-256 (hex) of `JSON.stringify([seq, ts, session, type, data, prev])`. Synchronous and free of Node
 * built-ins, so the same chain is written and verified in Node and in a browser.
 * @example
 * recordHash({ seq: 0, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'CHECK', data: {}, prev: GENESIS })
 */
export function recordHash(record: Omit<LogRecord, 'hash'>): string {
  const { seq, ts, session, type, data, prev } = record;
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([seq, ts, session, type, data, prev]))));
}

export function sealRecord(fields: Omit<LogRecord, 'hash'>): LogRecord {
  return { ...fields, hash: recordHash(fields) };
}

export type LogVerification =
  | { ok: true; count: number; head: string }
  | { ok: false; seq: number; reason: string };

/**
 * Checks the chain: sequence numbers contiguous, each record's `prev` equal to the hash before it, each
 * hash matching its content. Names the first record that breaks it.
 * @example
 * const result = verifyLog(readLog(path)); if (!result.ok) console.error(`record ${result.seq}: ${result.reason}`)
 */
export function verifyLog(records: readonly LogRecord[], options: { from?: number } = {}): LogVerification {
  // From a checkpoint on, the chain is anchored by the checkpoint record's own `prev`.
  const from = Math.min(options.from ?? 0, records.length);
  let prev = from === 0 ? GENESIS : records[from]?.prev ?? GENESIS;
  for (let index = from; index < records.length; index++) {
    const record = records[index]!;
    if (record.seq !== index) {
      return { ok: false, seq: index, reason: `expected sequence number ${index}, found ${record.seq} (a record was deleted or reordered)` };
    }
    if (record.prev !== prev) {
      return { ok: false, seq: index, reason: 'does not chain to the record before it (a record was deleted, inserted or reordered)' };
    }
    if (recordHash(record) !== record.hash) {
      return { ok: false, seq: index, reason: 'its content does not match its hash (the record was edited)' };
    }
    prev = record.hash;
  }
  return { ok: true, count: records.length, head: prev };
}

/** Parses one line, or null when it is not a whole record. */
export function parseRecordLine(line: string): LogRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const ok =
    typeof r.seq === 'number' &&
    typeof r.ts === 'string' &&
    (typeof r.session === 'string' || r.session === null) &&
    typeof r.type === 'string' &&
    typeof r.data === 'object' &&
    r.data !== null &&
    typeof r.prev === 'string' &&
    typeof r.hash === 'string';
  return ok ? (value as LogRecord) : null;
}
