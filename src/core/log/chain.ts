/**
 * The hash chain checked one record at a time, across the segments of a log: memory stays flat however
 * many records there are, and the first record that breaks the chain is named.
 *
 * A log may start after record 0 in two ways: start-up checks only the live segment, which continues an
 * archived one (`continues`), and retention drops old segments, recording in a `log.retention` record
 * the sequence number and `prev` hash the remaining chain starts from. Any other missing head (an
 * archived segment deleted by hand) fails.
 */
import { GENESIS, META_PREFIX, newerFormat, RECORD_VERSION, recordHash, recordVersion, type LogRecord, type LogVerification } from './record.js';

/** The audit record of a retention pass: which segments were dropped and where the kept chain starts. */
export const RETENTION = `${META_PREFIX}retention`;

export interface RetentionData {
  dropped: string[];
  droppedRecords: number;
  /** The first record kept: its sequence number and the hash it chains to (the last dropped record's). */
  keptFrom: { seq: number; prev: string };
}

/**
 * @example
 * const chain = new ChainVerifier(); for (const r of records) if (chain.push(r)) break; chain.result()
 */
export class ChainVerifier {
  private expectSeq: number | null = null;
  private prev = GENESIS;
  private first: { seq: number; prev: string } | null = null;
  private keptFrom: { seq: number; prev: string } | null = null;
  private failure: { seq: number; reason: string } | null = null;
  private lastVersion = 0;
  count = 0;

  /**
   * `continues`: the first record may chain to records kept elsewhere (its own `prev` anchors it).
   * `hash`: the same SHA-256 as recordHash, faster where the platform has one (node:crypto).
   */
  constructor(private readonly options: { continues?: boolean; hash?: (record: Omit<LogRecord, 'hash'>) => string } = {}) {}

  /** Checks the next record; returns the failure (also kept) or null. */
  push(record: LogRecord): { seq: number; reason: string } | null {
    if (this.failure) return this.failure;
    if (this.expectSeq === null) {
      this.first = { seq: record.seq, prev: record.prev };
      this.expectSeq = record.seq;
      this.prev = record.seq === 0 ? GENESIS : record.prev;
    }
    const version = recordVersion(record);
    // A format this code does not know is not damage: say which model-updater can read it.
    if (version > RECORD_VERSION) throw newerFormat(record.seq, `is in record format ${version} (this model-updater reads formats 1 and ${RECORD_VERSION})`);
    if (!Number.isInteger(version) || version < 1) return this.fail(record.seq, `has an unknown record format ${JSON.stringify(record.v)}`);
    if (version === 1 && this.lastVersion > 1) {
      return this.fail(record.seq, 'is in the 0.1.0 format but follows a newer-format record (records were spliced in)');
    }
    if (record.seq !== this.expectSeq) {
      return this.fail(this.expectSeq, `expected sequence number ${this.expectSeq}, found ${record.seq} (a record or a segment was deleted or reordered)`);
    }
    if (record.prev !== this.prev) {
      return this.fail(record.seq, 'does not chain to the record before it (a record was deleted, inserted or reordered)');
    }
    if ((this.options.hash ?? recordHash)(record) !== record.hash) return this.fail(record.seq, 'its content does not match its hash (the record was edited)');
    if (record.type === RETENTION) {
      const kept = (record.data as Partial<RetentionData>).keptFrom;
      if (kept && typeof kept.seq === 'number' && typeof kept.prev === 'string') this.keptFrom = kept;
    }
    this.prev = record.hash;
    this.lastVersion = version;
    this.expectSeq = record.seq + 1;
    this.count++;
    return null;
  }

  /** A break found outside the records themselves (a damaged line, a missing segment). */
  fail(seq: number, reason: string): { seq: number; reason: string } {
    this.failure ??= { seq, reason };
    return this.failure;
  }

  /** The last sequence number accepted, or -1. */
  get lastSeq(): number {
    return (this.expectSeq ?? 0) - 1;
  }

  get head(): string {
    return this.prev;
  }

  /** The verdict once every record was pushed. */
  result(): LogVerification {
    if (this.failure) return { ok: false, ...this.failure };
    const first = this.first;
    if (first && first.seq > 0 && !this.options.continues) {
      const kept = this.keptFrom;
      if (!kept || kept.seq < first.seq) {
        return { ok: false, seq: first.seq, reason: `the log starts at record ${first.seq}, and no ${RETENTION} record says the records before it were dropped (an archived segment was removed or cut)` };
      }
      if (kept.seq === first.seq && kept.prev !== first.prev) {
        return { ok: false, seq: first.seq, reason: `does not chain to where the ${RETENTION} record says the kept log starts` };
      }
    }
    return { ok: true, count: this.count, head: this.prev };
  }
}

/**
 * Verifies records that may continue an earlier chain (a live segment after a rotation).
 * @example
 * verifyContinuing(log.records()).ok
 */
export function verifyContinuing(records: readonly LogRecord[], from = 0): LogVerification {
  const chain = new ChainVerifier({ continues: true });
  for (let index = Math.max(0, from); index < records.length; index++) if (chain.push(records[index]!)) break;
  return chain.result();
}

/**
 * Checks a whole log held in memory, from record 0 (or from a retention record's kept start): sequence
 * numbers contiguous, each `prev` the hash before it, each hash matching its content. Names the first
 * record that breaks it; a record in a newer format throws LOG_TOO_NEW.
 * @example
 * const result = verifyLog(records); if (!result.ok) console.error(`record ${result.seq}: ${result.reason}`)
 */
export function verifyLog(records: readonly LogRecord[]): LogVerification {
  const chain = new ChainVerifier();
  for (const record of records) if (chain.push(record)) break;
  return chain.result();
}
