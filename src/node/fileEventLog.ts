/**
 * The append-only event log as a file of JSON lines. Appends are synchronous and fsynced: the journal
 * hook runs before the machine processes the event, and the record must be durable before its effects.
 */
import { closeSync, constants, fdatasyncSync, ftruncateSync, lstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { UpdateError } from '../core/errors.js';
import { NO_FOLLOW } from './noSymlinks.js';
import type { EventLog } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, META_PREFIX, parseRecordLine, sealRecord, verifyLog, type LogRecord } from '../core/log/record.js';

export type { EventLog } from '../core/ports/eventLog.js';

/**
 * Reads a log file. A torn last line (a crash mid-append) is reported, not thrown; damage before the
 * last line is LOG_CORRUPT.
 */
export function readLogFile(path: string): { records: LogRecord[]; tornTailBytes: number; validBytes: number } {
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (!info) return { records: [], tornTailBytes: 0, validBytes: 0 };
  // Never read through a link in place of the log (`log --verify`, quarantine and start all read it).
  if (info.isSymbolicLink()) throw symlinkedLog(path);
  const text = readFileSync(path, 'utf8');
  const records: LogRecord[] = [];
  let offset = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    const line = end === -1 ? text.slice(offset) : text.slice(offset, end);
    const record = end === -1 ? null : parseRecordLine(line);
    if (record === null) {
      const isTail = end === -1 || end === text.length - 1;
      if (!isTail) {
        throw new UpdateError(
          'LOG_CORRUPT',
          `The event log ${path} has a damaged record after record ${records.length - 1}. Move the file aside to start a new log (the installed models stay), or restore it from a backup.`,
        );
      }
      return { records, tornTailBytes: Buffer.byteLength(text.slice(offset)), validBytes: Buffer.byteLength(text.slice(0, offset)) };
    }
    records.push(record);
    offset = end + 1;
  }
  return { records, tornTailBytes: 0, validBytes: Buffer.byteLength(text) };
}

export class FileEventLog implements EventLog {
  private readonly fd: number;
  private readonly all: LogRecord[];
  private head: string;

  private constructor(
    readonly path: string,
    records: LogRecord[],
    fd: number,
    private readonly now: () => number,
  ) {
    this.all = records;
    this.fd = fd;
    this.head = records.at(-1)?.hash ?? GENESIS;
  }

  /**
   * Opens (or creates) the log, verifies its chain, and cuts a torn last record, logging the cut.
   * @example
   * const log = FileEventLog.open('/var/lib/app/models/events.log')
   */
  static open(path: string, now: () => number = Date.now): FileEventLog {
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw symlinkedLog(path);
    const { records, tornTailBytes, validBytes } = readLogFile(path);
    // Start-up checks the chain from the last checkpoint on; `model-updater log --verify` checks all of it.
    const verification = verifyLog(records, { from: Math.max(0, lastCheckpoint(records)) });
    if (!verification.ok) {
      throw new UpdateError(
        'LOG_CORRUPT',
        `The event log ${path} fails verification at record ${verification.seq}: ${verification.reason}. Run \`model-updater log --verify --dir <dir>\` for details; move the file aside to start a new log.`,
      );
    }
    // 'a+' that refuses a symbolic link planted in place of the log: appends never land outside the folder.
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | NO_FOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkedLog(path);
      throw new UpdateError('STORAGE_FAILED', `Could not open the event log ${path} (${(error as Error).message}); check that the folder is writable.`, { cause: error });
    }
    const log = new FileEventLog(path, records, fd, now);
    if (tornTailBytes > 0) {
      ftruncateSync(fd, validBytes);
      fdatasyncSync(fd);
      log.append(`${META_PREFIX}truncated`, null, { bytes: tornTailBytes, reason: 'torn last record from an interrupted write' });
    }
    return log;
  }

  records(): readonly LogRecord[] {
    return this.all;
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    const record = sealRecord({
      seq: this.all.length,
      ts: new Date(this.now()).toISOString(),
      session,
      type,
      data,
      prev: this.head,
    });
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    // An fsync failure is fatal: the write may be lost and must not be trusted or retried.
    fdatasyncSync(this.fd);
    this.all.push(record);
    this.head = record.hash;
    return record;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function symlinkedLog(path: string): UpdateError {
  return new UpdateError('STORAGE_FAILED', `The event log ${path} is a symbolic link, which could carry the audit trail outside the model folder. Remove it; model-updater never creates links there.`);
}
