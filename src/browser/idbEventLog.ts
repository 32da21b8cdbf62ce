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
 */
import { setMany, values, type UseStore } from 'idb-keyval';
import { UpdateError } from '../core/errors.js';
import type { EventLog } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, sealRecord, verifyLog, type LogRecord } from '../core/log/record.js';
import { openDatabases } from './idbLayout.js';

/**
 * Every record of the named log, oldest first, as stored (for viewers and tests; opening does more).
 * @example
 * const records = await readIdbLog('asr'); console.log(verifyLog(records).ok)
 */
export async function readIdbLog(name: string): Promise<LogRecord[]> {
  return values<LogRecord>(openDatabases(name).log);
}

export class IdbEventLog implements EventLog {
  private readonly all: LogRecord[];
  private head: string;
  private queue: LogRecord[] = [];
  private writing: Promise<void> | undefined;
  private failure: UpdateError | undefined;
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly store: UseStore,
    records: LogRecord[],
    private readonly now: () => number,
  ) {
    this.all = records;
    this.head = records.at(-1)?.hash ?? GENESIS;
  }

  /**
   * Opens (or creates) the log of one store name and verifies its chain.
   * @example
   * const log = await IdbEventLog.open('asr'); log.records().length
   */
  static async open(name: string, now: () => number = Date.now): Promise<IdbEventLog> {
    const { log: store, prefix } = openDatabases(name);
    let records: LogRecord[];
    try {
      records = await values<LogRecord>(store);
    } catch (error) {
      throw new UpdateError('STORAGE_FAILED', `Could not read the event log in IndexedDB (${prefix}:log): ${(error as Error)?.message ?? error}. Check that the site may use IndexedDB.`, { cause: error });
    }
    // As the file log: start-up checks the chain from the last checkpoint on.
    const verification = verifyLog(records, { from: Math.max(0, lastCheckpoint(records)) });
    if (!verification.ok) {
      throw new UpdateError(
        'LOG_CORRUPT',
        `The event log in IndexedDB (${prefix}:log) fails verification at record ${verification.seq}: ${verification.reason}. Export it for inspection, then delete that database to start a new log (the installed models stay).`,
      );
    }
    return new IdbEventLog(name, store, records, now);
  }

  records(): readonly LogRecord[] {
    return this.all;
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new UpdateError('STORAGE_FAILED', `The event log ${this.name} is closed; start the updater again.`);
    const record = sealRecord({ seq: this.all.length, ts: new Date(this.now()).toISOString(), session, type, data, prev: this.head });
    this.all.push(record);
    this.head = record.hash;
    this.queue.push(record);
    this.writing ??= this.drain();
    return record;
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
          await setMany(batch.map((record) => [record.seq, record]), this.store);
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
