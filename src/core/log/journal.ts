/**
 * The chart's journal: every event it receives is appended to the log, durably, before the chart acts
 * on it; settled states are chained in as checkpoints. A failed append (an fsync error included) is
 * fatal: it is never retried and trusted.
 */
import type { EventObject } from 'xstate';
import { UpdateError } from '../errors.js';
import type { EventLog } from '../ports/eventLog.js';
import { CHECKPOINT, lastCheckpoint, type LogRecord } from './record.js';
import { checkpointData, eventData, isCheckpointable, type UpdaterSnapshot } from './replay.js';

export class Journal {
  /** Set by the first failed append; from then on nothing more is written. */
  failure: UpdateError | undefined;
  private checkpointAt: number;

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
    return this.tryAppend(event.type, session, eventData(event));
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
