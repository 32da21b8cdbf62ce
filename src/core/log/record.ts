/**
 * One line of the event log and the hash chain that binds the lines together.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { UpdateError } from '../errors.js';

export interface LogRecord {
  /**
   * The record format: 2 for versioned domain events (`check.requested`, `version.activated`, ...; see
   * domainEvents.ts). Absent on records written by model-updater 0.1.0 (format 1: the chart's own event
   * names), whose hash does not cover it.
   */
  v?: number;
  /** 0, 1, 2, ... with no gaps. */
  seq: number;
  /** ISO-8601 wall-clock time the record was written. */
  ts: string;
  /** Update session the record belongs to, or null outside a session. */
  session: string | null;
  /** The domain event (`check.requested`, `version.activated`, ...) or a `log.*` bookkeeping type. */
  type: string;
  data: Record<string, unknown>;
  /** Hash of the previous record; GENESIS for the first. */
  prev: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

/** The record format this code writes, and the newest it reads. */
export const RECORD_VERSION = 2;

/** A record's format: 1 for the unversioned records of model-updater 0.1.0. */
export function recordVersion(record: Pick<LogRecord, 'v'>): number {
  return record.v ?? 1;
}

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
 * SHA-256 (hex) of `JSON.stringify([v, seq, ts, session, type, data, prev])`; a 0.1.0 record (no `v`)
 * keeps its formula, `JSON.stringify([seq, ts, session, type, data, prev])`, so its chain still verifies.
 * Synchronous and free of Node built-ins, so the same chain is written and verified in Node and in a browser.
 * @example
 * recordHash({ v: 2, seq: 0, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'check.requested', data: {}, prev: GENESIS })
 */
export function recordHash(record: Omit<LogRecord, 'hash'>): string {
  return bytesToHex(sha256(utf8ToBytes(hashedText(record))));
}

/** The exact text a record's hash covers, for hashers other than recordHash's (node:crypto). */
export function hashedText(record: Omit<LogRecord, 'hash'>): string {
  const { v, seq, ts, session, type, data, prev } = record;
  return JSON.stringify(v === undefined ? [seq, ts, session, type, data, prev] : [v, seq, ts, session, type, data, prev]);
}

/**
 * Seals a record in the format this code writes (`v` 2); the event logs call it on every append.
 * @example
 * sealRecord({ seq: 0, ts: new Date().toISOString(), session: null, type: 'updater.started', data: { at: 0 }, prev: GENESIS })
 */
export function sealRecord(fields: Omit<LogRecord, 'hash' | 'v'>): LogRecord {
  const record = { v: RECORD_VERSION, ...fields };
  return { ...record, hash: recordHash(record) };
}

/** Seals a record as model-updater 0.1.0 wrote it (no `v`): for tests and golden logs of that format. */
export function sealLegacyRecord(fields: Omit<LogRecord, 'hash' | 'v'>): LogRecord {
  const { seq, ts, session, type, data, prev } = fields;
  const record = { seq, ts, session, type, data, prev };
  return { ...record, hash: recordHash(record) };
}

/** The error for a record in a format newer than this code reads: nothing is wrong with the log. */
export function newerFormat(seq: number, what: string): UpdateError {
  return new UpdateError(
    'LOG_TOO_NEW',
    `Record ${seq} of the event log ${what}: the log was written by a newer model-updater, which this one cannot replay. Run that newer model-updater (or a later one) on this folder; do not quarantine or edit the log, nothing in it is damaged.`,
  );
}

export type LogVerification =
  | { ok: true; count: number; head: string }
  | { ok: false; seq: number; reason: string };

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
    (r.v === undefined || typeof r.v === 'number') &&
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
