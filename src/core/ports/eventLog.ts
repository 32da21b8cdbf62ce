/**
 * What the updater needs from an event log, whatever keeps it (files in Node, IndexedDB in a browser).
 * Free of platform imports, so browser code can depend on it without pulling in node:fs.
 */
import type { LogRecord } from '../log/record.js';

/**
 * How the log is cut into segments (`log` option of the updater). A segment rotates at the first
 * checkpointable moment after either threshold; each starts with a checkpoint chained to the last
 * record of the one before. Archived segments beyond `retainSegments` are dropped, oldest first, with a
 * `log.retention` audit record. Defaults: 10,000 records, 4 MiB, 16 archived segments kept.
 */
export interface LogSegmentOptions {
  /** Records in the live segment that make it rotate. Default 10,000. */
  segmentRecords?: number;
  /** Bytes in the live segment that make it rotate (Node; the IndexedDB log counts records only). Default 4 MiB. */
  segmentBytes?: number;
  /** Archived segments kept besides the live one; older ones are dropped. Default 16; Infinity keeps all. */
  retainSegments?: number;
}

export interface EventLog {
  /**
   * The records of the live segment, oldest first (the ones appended in this run included): those since
   * the last rotation, which begin with a checkpoint. Older records stay in archived segments, on disk.
   */
  records(): readonly LogRecord[];
  /**
   * Seals and appends one record. Called synchronously from the journal hook, before the chart acts on
   * the event; a throw stops the updater. On return the record is written (the file log: in the file,
   * surviving a killed process) or queued (IndexedDB); `flush` makes it durable.
   */
  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord;
  /**
   * Resolves when every record appended so far is durable; rejects when that failed (then appends throw
   * too). The updater awaits it before every irreversible step. Optional for logs durable on append.
   */
  flush?(): Promise<void>;
  /** Whether the live segment reached its rotation threshold. Optional: a log without segments never does. */
  segmentFull?(): boolean;
  /**
   * Archives the live segment and starts the next with this record (a checkpoint), chained to the last;
   * applies retention. Durable when it returns (or, IndexedDB, after `flush`).
   */
  rotate?(type: string, session: string | null, data: Record<string, unknown>): LogRecord;
  close(): void;
}
