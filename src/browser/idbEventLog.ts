/**
 * The event log in IndexedDB: one key per record (its `seq`), never one growing array.
 *
 * Durability, honestly: `append()` is called synchronously from the journal hook, and IndexedDB is
 * asynchronous. So a record is sealed into the in-memory chain at once and written soon after, in order
 * (records that pile up while a write is in flight go together in the next transaction, still one key
 * each). `flush()` resolves when everything appended so far is committed. The browser entry makes the
 * store flush the log before each of its own writes, so the records that led to a write are stored before
 * it. What a closed tab or a crash can lose is a tail of records that came after the last store write;
 * on the next start the log replays to an earlier state and the interrupted step runs again (every step
 * is idempotent). Committed transactions survive a reload and a tab crash; against power loss the
 * browser's IndexedDB durability decides.
 *
 * Segments: the key 'segments' holds where each segment starts (`{ seq, prev }`, oldest first; absent in
 * a log that never rotated). Open reads only the live segment's keys. A rotation writes the new
 * segment's first record and the new list in one transaction; retention deletes the oldest segments'
 * keys in the same transaction as the list and its `log.retention` audit record.
 */
import { get, promisifyRequest, type UseStore } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import type { EventLog, LogSegmentOptions } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, sealRecord, type LogRecord } from '../core/log/record.js';
import { RETENTION, verifyContinuing, type RetentionData } from '../core/log/chain.js';
import { resolveSegmentOptions, type ResolvedSegmentOptions } from '../core/log/segmentOptions.js';
import { getAllInRange, openDatabases } from './idbLayout.js';

/** Where a segment starts: its first record's sequence number and the hash that record chains to. */
interface SegmentStart {
  seq: number;
  prev: string;
}

const SEGMENTS_KEY = 'segments';

/** Record keys are numbers; the segment list's string key sorts after all of them. */
function recordRange(from = 0): IDBKeyRange {
  return IDBKeyRange.bound(from, Infinity);
}

/** One write of the queue: records to put, and (at a rotation) the new segment list and keys to drop. */
interface PendingWrite {
  records: LogRecord[];
  segments?: SegmentStart[];
  dropBelow?: number;
}

/**
 * Every record of the named log, oldest first, as stored (for viewers and tests; opening does more).
 * @example
 * const records = await readIdbLog('asr'); console.log(verifyLog(records).ok)
 */
export async function readIdbLog(name: string): Promise<LogRecord[]> {
  return getAllInRange<LogRecord>(openDatabases(name).log, recordRange());
}

export class IdbEventLog implements EventLog {
  private all: LogRecord[];
  private head: string;
  private nextSeq: number;
  private queue: PendingWrite[] = [];
  private readonly segmentOptions: ResolvedSegmentOptions;
  private writing: Promise<void> | undefined;
  private failure: UpdateError | undefined;
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly store: UseStore,
    records: LogRecord[],
    private readonly now: () => number,
    private segments: SegmentStart[],
    options: LogSegmentOptions,
  ) {
    this.all = records;
    this.head = records.at(-1)?.hash ?? GENESIS;
    this.nextSeq = (records.at(-1)?.seq ?? -1) + 1;
    this.segmentOptions = resolveSegmentOptions(options);
  }

  /**
   * Opens (or creates) the log of one store name and verifies its chain.
   * @example
   * const log = await IdbEventLog.open('asr'); log.records().length
   */
  static async open(name: string, now: () => number = Date.now, options: LogSegmentOptions = {}): Promise<IdbEventLog> {
    const { log: store, prefix } = openDatabases(name);
    let records: LogRecord[];
    let segments: SegmentStart[];
    try {
      // Only the live segment is read: the one the last entry of the segment list starts.
      segments = (await get<SegmentStart[]>(SEGMENTS_KEY, store)) ?? [];
      records = await getAllInRange<LogRecord>(store, recordRange(segments.at(-1)?.seq ?? 0));
    } catch (error) {
      throw new UpdateError('STORAGE_FAILED', `Could not read the event log in IndexedDB (${prefix}:log): ${(error as Error)?.message ?? error}. Check that the site may use IndexedDB.`, { cause: error });
    }
    // As the file log: start-up checks the chain from the last checkpoint on.
    const verification = verifyContinuing(records, Math.max(0, lastCheckpoint(records)));
    if (!verification.ok) {
      throw new UpdateError(
        'LOG_CORRUPT',
        `The event log in IndexedDB (${prefix}:log) fails verification at record ${verification.seq}: ${verification.reason}. Export it for inspection, then delete that database to start a new log (the installed models stay).`,
      );
    }
    return new IdbEventLog(name, store, records, now, segments, options);
  }

  records(): readonly LogRecord[] {
    return this.all;
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new UpdateError('STORAGE_FAILED', `The event log ${this.name} is closed; start the updater again.`);
    const record = this.seal(type, session, data);
    this.all.push(record);
    this.enqueue({ records: [record] });
    return record;
  }

  /** Whether the live segment holds `segmentRecords` records (the IndexedDB log counts no bytes). */
  segmentFull(): boolean {
    return this.all.length >= this.segmentOptions.segmentRecords;
  }

  /**
   * Starts the next segment with this record (a checkpoint) and drops the oldest archived segments beyond
   * `retainSegments` with a `log.retention` audit record; all in one transaction, queued like a record.
   */
  rotate(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new UpdateError('STORAGE_FAILED', `The event log ${this.name} is closed; start the updater again.`);
    const first = this.seal(type, session, data);
    // A log from before segments is one segment that starts at record 0.
    const starts = this.segments.length ? [...this.segments] : [{ seq: this.all[0]?.seq ?? 0, prev: this.all[0]?.prev ?? GENESIS }];
    starts.push({ seq: first.seq, prev: first.prev });
    this.all = [first];
    const write: PendingWrite = { records: [first], segments: starts };
    const excess = starts.length - 1 - this.segmentOptions.retainSegments;
    if (excess > 0) {
      const dropped = starts.splice(0, excess);
      const kept = starts[0]!;
      const audit: RetentionData = { dropped: dropped.map((s) => `segment ${s.seq}`), droppedRecords: kept.seq - dropped[0]!.seq, keptFrom: { seq: kept.seq, prev: kept.prev } };
      const record = this.seal(RETENTION, null, { ...audit });
      this.all.push(record);
      write.records.push(record);
      write.dropBelow = kept.seq;
    }
    this.segments = starts;
    this.enqueue(write);
    return first;
  }

  private seal(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    const record = sealRecord({ seq: this.nextSeq, ts: new Date(this.now()).toISOString(), session, type, data, prev: this.head });
    this.nextSeq++;
    this.head = record.hash;
    return record;
  }

  private enqueue(write: PendingWrite): void {
    this.queue.push(write);
    this.writing ??= this.drain();
  }

  /** Resolves when every record appended so far is committed to IndexedDB; rejects if a write failed. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.failure) throw this.failure;
  }

  /** Stops accepting records; those already appended are still written (await flush() for them). */
  close(): void {
    this.closed = true;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.store('readwrite', (store) => {
            for (const write of batch) {
              if (write.dropBelow !== undefined) store.delete(IDBKeyRange.bound(0, write.dropBelow, false, true));
              for (const record of write.records) store.put(record, record.seq);
              if (write.segments) store.put(write.segments, SEGMENTS_KEY);
            }
            return promisifyRequest(store.transaction);
          });
        } catch (error) {
          // The chain in memory is now ahead of the stored one: refuse further records, so the chart stops.
          this.failure = new UpdateError('STORAGE_FAILED', `Could not write the event log to IndexedDB: ${(error as Error)?.message ?? error}. The updater stopped; free some browser storage for this site, then start it again.`, { cause: error });
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}
