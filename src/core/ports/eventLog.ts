/**
 * What the updater needs from an event log, whatever keeps it (a file in Node, IndexedDB in a browser).
 * Free of platform imports, so browser code can depend on it without pulling in node:fs.
 */
import type { LogRecord } from '../log/record.js';

export interface EventLog {
  /** Every record so far, oldest first (the ones appended in this run included). */
  records(): readonly LogRecord[];
  /**
   * Seals and appends one record. Called synchronously from the journal hook, before the chart acts on
   * the event; a throw stops the updater. How durable the record is on return depends on the log: the
   * file log has fsynced it, the IndexedDB log has queued it (see `flush`).
   */
  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord;
  /** Resolves when every record appended so far is durable. Optional: logs that write synchronously need none. */
  flush?(): Promise<void>;
  close(): void;
}
