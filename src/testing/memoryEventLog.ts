/**
 * The event log in memory, with the file log's contract (each append sealed into the hash chain and
 * synced before the chart acts on it) and a durable image that outlives the updater: what a crash keeps.
 * A fault makes an append fail the way an fsync does: the record may be written but not synced.
 */
import { UpdateError } from '../core/errors.js';
import type { EventLog } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, sealRecord, verifyLog, type LogRecord } from '../core/log/record.js';

/** An append that fails: the `after`-th from now. `lost`: nothing reaches the disk; `unsynced`: written, not synced. */
export interface AppendFault {
  after: number;
  mode: 'lost' | 'unsynced';
  repeat?: 'once' | 'from-then-on';
}

/**
 * The log's storage: records written and how many of them are synced.
 * @example
 * const disk = new MemoryLogDisk(); const log = disk.open(() => clock.now())
 */
export class MemoryLogDisk {
  records: LogRecord[] = [];
  synced = 0;
  private appends = 0;
  private fault: { at: number; mode: AppendFault['mode']; repeat: 'once' | 'from-then-on' } | null = null;

  failAppends(fault: AppendFault): void {
    this.fault = { at: this.appends + 1 + fault.after, mode: fault.mode, repeat: fault.repeat ?? 'once' };
  }

  heal(): void {
    this.fault = null;
  }

  /** A power cut: records not synced are gone (or, `dropUnsynced: false`, kept). */
  crash({ dropUnsynced }: { dropUnsynced: boolean }): void {
    if (dropUnsynced) this.records.length = this.synced;
    this.synced = this.records.length;
  }

  /** Opens the log like FileEventLog.open: verifies the chain from the last checkpoint. */
  open(now: () => number): MemoryEventLog {
    const verification = verifyLog(this.records, { from: Math.max(0, lastCheckpoint(this.records)) });
    if (!verification.ok) {
      throw new UpdateError('LOG_CORRUPT', `The simulated event log fails verification at record ${verification.seq}: ${verification.reason}.`);
    }
    return new MemoryEventLog(this, now);
  }

  /** @internal Counts an append and says how an injected fault hits it, if one does. */
  nextAppend(): AppendFault['mode'] | null {
    this.appends++;
    const fault = this.fault;
    if (!fault || this.appends < fault.at || (fault.repeat === 'once' && this.appends > fault.at)) return null;
    return fault.mode;
  }
}

export class MemoryEventLog implements EventLog {
  private readonly all: LogRecord[];
  private closed = false;

  constructor(
    private readonly disk: MemoryLogDisk,
    private readonly now: () => number,
  ) {
    this.all = [...disk.records];
  }

  records(): readonly LogRecord[] {
    return this.all;
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.closed) throw new UpdateError('STORAGE_FAILED', 'The simulated event log is closed.');
    const record = sealRecord({ seq: this.all.length, ts: new Date(this.now()).toISOString(), session, type, data, prev: this.all.at(-1)?.hash ?? GENESIS });
    const fault = this.disk.nextAppend();
    if (fault === 'lost') throw Object.assign(new Error('EIO: i/o error (simulated), write events.log'), { code: 'EIO' });
    this.disk.records.push(record);
    if (fault === 'unsynced') throw Object.assign(new Error('EIO: i/o error (simulated), fsync events.log'), { code: 'EIO' });
    this.disk.synced = this.disk.records.length;
    this.all.push(record);
    return record;
  }

  close(): void {
    this.closed = true;
  }
}
