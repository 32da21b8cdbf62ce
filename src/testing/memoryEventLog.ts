/**
 * The event log in memory, with the file log's contract (each append sealed into the hash chain and
 * synced before the chart acts on it) and a durable image that outlives the updater: what a crash keeps.
 * A fault makes an append fail the way an fsync does: the record may be written but not synced.
 */
import { UpdateError } from '../core/errors.js';
import type { EventLog } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, sealRecord, type LogRecord } from '../core/log/record.js';
import { RETENTION, verifyContinuing, type RetentionData } from '../core/log/chain.js';
import type { LogSegmentOptions } from '../core/ports/eventLog.js';
import { resolveSegmentOptions, type ResolvedSegmentOptions } from '../core/log/segmentOptions.js';

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
  /** The live segment. */
  records: LogRecord[] = [];
  /** Archived segments, oldest first (rotation is durable at once here). */
  archived: LogRecord[][] = [];
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

  /** Opens the log like FileEventLog.open: verifies the live segment's chain from its last checkpoint. */
  open(now: () => number, options: LogSegmentOptions = {}): MemoryEventLog {
    const verification = verifyContinuing(this.records, Math.max(0, lastCheckpoint(this.records)));
    if (!verification.ok) {
      throw new UpdateError('LOG_CORRUPT', `The simulated event log fails verification at record ${verification.seq}: ${verification.reason}.`);
    }
    return new MemoryEventLog(this, now, options);
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
  private all: LogRecord[];
  private closed = false;
  private readonly segments: ResolvedSegmentOptions;

  constructor(
    private readonly disk: MemoryLogDisk,
    private readonly now: () => number,
    options: LogSegmentOptions = {},
  ) {
    this.all = [...disk.records];
    this.segments = resolveSegmentOptions(options);
  }

  /** The live segment: the records since the last rotation. */
  records(): readonly LogRecord[] {
    return this.all;
  }

  segmentFull(): boolean {
    return this.all.length >= this.segments.segmentRecords;
  }

  /** Archives the live segment, starts the next with this record, drops archived segments beyond retention. */
  rotate(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.closed) throw new UpdateError('STORAGE_FAILED', 'The simulated event log is closed.');
    const first = this.seal(type, session, data);
    this.disk.archived.push(this.disk.records);
    this.disk.records = [first];
    this.disk.synced = 1;
    this.all = [first];
    const excess = this.disk.archived.length - this.segments.retainSegments;
    if (excess > 0) {
      const dropped = this.disk.archived.splice(0, excess);
      const kept = this.disk.archived[0]?.[0] ?? first;
      const audit: RetentionData = {
        dropped: dropped.map((segment) => `segment ${segment[0]?.seq ?? '?'}`),
        droppedRecords: dropped.reduce((sum, segment) => sum + segment.length, 0),
        keptFrom: { seq: kept.seq, prev: kept.prev },
      };
      this.append(RETENTION, null, { ...audit });
    }
    return first;
  }

  private seal(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    const last = this.all.at(-1) ?? this.disk.archived.at(-1)?.at(-1);
    return sealRecord({ seq: last ? last.seq + 1 : 0, ts: new Date(this.now()).toISOString(), session, type, data, prev: last?.hash ?? GENESIS });
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.closed) throw new UpdateError('STORAGE_FAILED', 'The simulated event log is closed.');
    const record = this.seal(type, session, data);
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
