/**
 * The chart's journal: every event it receives is appended to the log, durably, before the chart acts
 * on it; settled states are chained in as checkpoints. A failed append (an fsync error included) is
 * fatal: it is never retried and trusted.
 */
import type { EventObject } from 'xstate';
import { UpdateError } from '../errors.js';
import type { EventLog } from '../ports/eventLog.js';
import { FORMAT_UPGRADED, toDomainEvent } from './domainEvents.js';
import { CHECKPOINT, lastCheckpoint, RECORD_VERSION, recordVersion, type LogRecord } from './record.js';
import { checkpointData, isCheckpointable, type UpdaterSnapshot } from './replay.js';

export class Journal {
  /** Set by the first failed append; from then on nothing more is written. */
  failure: UpdateError | undefined;
  private checkpointAt: number;
  /** Whether this journal has looked for 0.1.0 records to note the format change after. */
  private formatNoted = false;

  constructor(
    readonly log: EventLog,
    private readonly location: string,
    private readonly checkpointEvery: number,
  ) {
    this.checkpointAt = lastCheckpoint(log.records());
  }

  /** Appends a record, or throws the (typed, remembered) failure. */
  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    return this.write(() => this.log.append(type, session, data));
  }

  private write(write: () => LogRecord): LogRecord {
    if (this.failure) throw this.failure;
    try {
      if (!this.formatNoted) this.noteFormatUpgrade();
      return write();
    } catch (error) {
      this.failure = new UpdateError(
        'STORAGE_FAILED',
        `Could not write the event log in ${this.location}: ${(error as Error).message}. The updater stopped; free space or fix permissions, then start it again.`,
        { cause: error },
      );
      throw this.failure;
    }
  }

  /**
   * Journals an event the chart is about to process; `current` is the snapshot it arrives in (its
   * session names the record). False when the record could not be written.
   */
  record(event: EventObject, current: UpdaterSnapshot | undefined): boolean {
    const session = 'sessionId' in event && typeof event.sessionId === 'string' ? event.sessionId : (current?.context.session?.id ?? null);
    return this.tryAppendEvent(event, session);
  }

  /** Journals a chart event (as its domain event) outside the inspection hook, e.g. a recovery event; throws on failure. */
  appendEvent(event: EventObject, session: string | null): LogRecord {
    const { type, data } = toDomainEvent(event);
    return this.append(type, session, data);
  }

  /** Writes `snapshot` as a checkpoint when enough records follow the last one. False on failure. */
  checkpoint(snapshot: UpdaterSnapshot): boolean {
    if (this.failure || !isCheckpointable(snapshot)) return !this.failure;
    // A full segment rotates here: the next one starts from this checkpoint.
    if (this.log.rotate && this.log.segmentFull?.()) {
      const ok = this.tryWrite(() => this.log.rotate!(CHECKPOINT, null, checkpointData(snapshot)));
      if (ok) this.checkpointAt = 0;
      return ok;
    }
    if (this.log.records().length - 1 - this.checkpointAt < this.checkpointEvery) return true;
    const ok = this.tryAppend(CHECKPOINT, null, checkpointData(snapshot));
    if (ok) this.checkpointAt = this.log.records().length - 1;
    return ok;
  }

  private tryAppendEvent(event: EventObject, session: string | null): boolean {
    let domain: ReturnType<typeof toDomainEvent>;
    try {
      domain = toDomainEvent(event);
    } catch (error) {
      // No way to journal it: the chart must not act on an event the log cannot hold.
      this.failure ??= error as UpdateError;
      return false;
    }
    return this.tryAppend(domain.type, session, domain.data);
  }

  /**
   * The first record this code appends after 0.1.0 records is preceded by an audit record saying from
   * which record on the log holds versioned domain events. Only the open's own cut of a torn tail
   * (`log.truncated`) can have been written in the new format before it.
   */
  private noteFormatUpgrade(): void {
    this.formatNoted = true;
    const records = this.log.records();
    let index = records.length - 1;
    while (index >= 0 && recordVersion(records[index]!) > 1 && records[index]!.type === 'log.truncated') index--;
    if (index < 0 || recordVersion(records[index]!) > 1) return;
    this.log.append(FORMAT_UPGRADED, null, {
      from: 1,
      to: RECORD_VERSION,
      firstSeq: records[index]!.seq + 1,
      reason: 'records from firstSeq on are versioned domain events; the ones before it were written by model-updater 0.1.0 and are upcast when replayed',
    });
  }

  private tryAppend(type: string, session: string | null, data: Record<string, unknown>): boolean {
    return this.tryWrite(() => this.log.append(type, session, data));
  }

  private tryWrite(write: () => LogRecord): boolean {
    try {
      this.write(write);
      return true;
    } catch {
      return false;
    }
  }
}
