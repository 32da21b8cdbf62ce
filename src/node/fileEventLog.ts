/**
 * The append-only event log as files of JSON lines in the model folder: the live segment `events.log`
 * and archived segments (see logSegments.ts). Only the live segment is held in memory.
 *
 * Durability (the write-ahead rule): every record is written with a synchronous write() before the chart
 * acts on it, so it survives the process being killed. fsyncs run off the event loop, grouped (one in
 * flight; the records written meanwhile share the next one), so a download's progress records never wait
 * for the disk. What a power cut may lose is a tail of records since the last fsync; every step they
 * describe is idempotent and runs again. The few irreversible steps (the active-pointer switch, a
 * rollback's restore, removing versions, a rotation) first await `flush()`: the records that led to them
 * are on disk before they act.
 */
import { closeSync, constants, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { NO_FOLLOW, WRITE_NO_FOLLOW } from './noSymlinks.js';
import type { EventLog, LogSegmentOptions } from '../core/ports/eventLog.js';
import { GENESIS, lastCheckpoint, META_PREFIX, parseRecordLine, sealRecord, type LogRecord } from '../core/log/record.js';
import { RETENTION, verifyContinuing, type RetentionData } from '../core/log/chain.js';
import { archiveName, listArchivedSegments, NEXT_SEGMENT, readSegmentLines } from './logSegments.js';
import { resolveSegmentOptions, type ResolvedSegmentOptions } from '../core/log/segmentOptions.js';

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

/** How the log syncs its file descriptor: a seam for benchmarks and tests (a slow disk). */
export interface LogSync {
  /** fdatasync off the event loop. */
  fdatasync(fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void;
  fdatasyncSync(fd: number): void;
}

// Called through the live bindings, so a test watching node:fs sees them.
const NODE_SYNC: LogSync = { fdatasync: (fd, callback) => fdatasync(fd, callback), fdatasyncSync: (fd) => fdatasyncSync(fd) };

export interface FileEventLogOptions extends LogSegmentOptions {
  /** How fsyncs are made (default: node:fs). */
  sync?: LogSync;
}

export class FileEventLog implements EventLog {
  private fd: number;
  private live: LogRecord[];
  private head: string;
  private nextSeq: number;
  private bytes: number;
  private readonly dir: string;
  private readonly segments: ResolvedSegmentOptions;
  private readonly sync: LogSync;
  /** Records written to the live file, and how many of them an fsync has covered. */
  private written = 0;
  private synced = 0;
  private syncing: Promise<void> | undefined;
  private failure: UpdateError | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    records: LogRecord[],
    fd: number,
    bytes: number,
    private readonly now: () => number,
    options: FileEventLogOptions,
    tailOf: LogRecord | null,
  ) {
    this.live = records;
    this.fd = fd;
    this.bytes = bytes;
    const last = records.at(-1) ?? tailOf;
    this.head = last?.hash ?? GENESIS;
    this.nextSeq = last ? last.seq + 1 : 0;
    this.dir = dirname(path);
    this.segments = resolveSegmentOptions(options);
    this.sync = options.sync ?? NODE_SYNC;
  }

  /**
   * Opens (or creates) the log, finishes or undoes a rotation a crash interrupted, verifies the live
   * segment's chain from its last checkpoint, and cuts a torn last record, logging the cut.
   * @example
   * const log = FileEventLog.open('/var/lib/app/models/events.log', Date.now, { segmentRecords: 10_000 })
   */
  static open(path: string, now: () => number = Date.now, options: FileEventLogOptions = {}): FileEventLog {
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw symlinkedLog(path);
    const dir = dirname(path);
    finishRotation(dir, path);
    const archived = listArchivedSegments(dir);
    let tailOf: LogRecord | null = null;
    const present = lstatSync(path, { throwIfNoEntry: false }) !== undefined;
    if (archived.length > 0 && !present) {
      throw new UpdateError('LOG_CORRUPT', `The event log ${path} is missing, but archived segments of it are in ${dir}. Run \`model-updater log --quarantine --dir <dir>\` to set them aside and start a new log (the installed models stay).`);
    }
    const { records, tornTailBytes, validBytes } = readLogFile(path);
    if (records.length === 0 && archived.length > 0) tailOf = lastRecordOf(archived.at(-1)!.path);
    // Start-up checks the chain from the last checkpoint on; `model-updater log --verify` checks all of it.
    const verification = verifyContinuing(records, Math.max(0, lastCheckpoint(records)));
    if (!verification.ok) {
      throw new UpdateError(
        'LOG_CORRUPT',
        `The event log ${path} fails verification at record ${verification.seq}: ${verification.reason}. Run \`model-updater log --verify --dir <dir>\` for details; move the file aside to start a new log.`,
      );
    }
    const log = new FileEventLog(path, records, openAppend(path), validBytes, now, options, tailOf);
    log.written = log.synced = records.length;
    if (tornTailBytes > 0) {
      ftruncateSync(log.fd, validBytes);
      log.sync.fdatasyncSync(log.fd);
      log.append(`${META_PREFIX}truncated`, null, { bytes: tornTailBytes, reason: 'torn last record from an interrupted write' });
    }
    return log;
  }

  /** The live segment's records: those since the last rotation, oldest first. */
  records(): readonly LogRecord[] {
    return this.live;
  }

  append(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new UpdateError('STORAGE_FAILED', `The event log ${this.path} is closed; start the updater again.`);
    const record = this.seal(type, session, data);
    const line = `${JSON.stringify(record)}\n`;
    // Synchronous: the record is in the file (the page cache) before the chart acts on it.
    writeSync(this.fd, line);
    this.bytes += Buffer.byteLength(line);
    this.written++;
    this.live.push(record);
    this.head = record.hash;
    this.nextSeq++;
    this.startSync();
    return record;
  }

  /** Resolves when every record appended so far is on disk; rejects (for good) if an fsync failed. */
  async flush(): Promise<void> {
    while (this.synced < this.written && !this.failure) {
      // Closed: close() syncs what is left once the fsync in flight is done.
      if (this.closed) {
        await this.syncing;
        break;
      }
      this.startSync();
      await this.syncing;
    }
    if (this.failure) throw this.failure;
  }

  /** Whether the live segment has reached its size or record threshold (see LogSegmentOptions). */
  segmentFull(): boolean {
    return this.live.length >= this.segments.segmentRecords || this.bytes >= this.segments.segmentBytes;
  }

  /**
   * Archives the live segment and starts the next with `type` (a checkpoint) as its first record,
   * chained to the last; then drops the oldest archived segments beyond `retainSegments`, with an audit
   * record. Synchronous and synced throughout: rare, and the files must never be left half-moved.
   */
  rotate(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new UpdateError('STORAGE_FAILED', `The event log ${this.path} is closed; start the updater again.`);
    try {
      this.sync.fdatasyncSync(this.fd);
      this.synced = this.written;
      const first = this.seal(type, session, data);
      const line = `${JSON.stringify(first)}\n`;
      const next = join(this.dir, NEXT_SEGMENT);
      const fd = openSync(next, WRITE_NO_FOLLOW);
      try {
        writeSync(fd, line);
        this.sync.fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const archived = join(this.dir, archiveName(this.live[0]?.seq ?? first.seq));
      if (lstatSync(archived, { throwIfNoEntry: false })) throw new Error(`${archived} already exists`);
      renameSync(this.path, archived);
      renameSync(next, this.path);
      fsyncDir(this.dir);
      this.retire(this.fd);
      this.fd = openAppend(this.path);
      this.live = [first];
      this.head = first.hash;
      this.nextSeq = first.seq + 1;
      this.bytes = Buffer.byteLength(line);
      this.written = this.synced = 1;
      this.applyRetention();
      return first;
    } catch (error) {
      this.failure ??= error instanceof UpdateError ? error : new UpdateError('STORAGE_FAILED', `Could not rotate the event log ${this.path}: ${(error as Error).message}. The updater stopped; free space or fix permissions, then start it again.`, { cause: error });
      throw this.failure;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retire(this.fd);
  }

  private seal(type: string, session: string | null, data: Record<string, unknown>): LogRecord {
    return sealRecord({ seq: this.nextSeq, ts: new Date(this.now()).toISOString(), session, type, data, prev: this.head });
  }

  /** Drops the oldest archived segments beyond the retention setting: audit record first, synced, then unlink. */
  private applyRetention(): void {
    const archived = listArchivedSegments(this.dir);
    const excess = archived.length - this.segments.retainSegments;
    if (excess <= 0) return;
    const dropped = archived.slice(0, excess);
    const kept = archived[excess]!;
    const keptFirst = firstRecordOf(kept.path);
    if (!keptFirst) throw new Error(`the archived segment ${kept.path} is empty`);
    const audit: RetentionData = { dropped: dropped.map((s) => s.name), droppedRecords: kept.firstSeq - dropped[0]!.firstSeq, keptFrom: { seq: keptFirst.seq, prev: keptFirst.prev } };
    this.append(RETENTION, null, { ...audit });
    this.sync.fdatasyncSync(this.fd);
    this.synced = this.written;
    for (const segment of dropped) unlinkSync(segment.path);
    fsyncDir(this.dir);
  }

  /** One fsync in flight at a time; records written meanwhile are covered by the next one. */
  private startSync(): void {
    if (this.syncing || this.closed || this.failure || this.synced >= this.written) return;
    const target = this.written;
    const fd = this.fd;
    this.syncing = new Promise((resolve) => {
      this.sync.fdatasync(fd, (error) => {
        this.syncing = undefined;
        // A failed fsync is fatal: the write may be lost and must not be trusted or retried.
        if (error) this.failure ??= new UpdateError('STORAGE_FAILED', `Could not sync the event log ${this.path} to disk: ${error.message}. The updater stopped; free space or fix the disk, then start it again.`, { cause: error });
        else if (fd === this.fd) this.synced = Math.max(this.synced, target);
        resolve();
        this.startSync();
      });
    });
  }

  /** Closes a descriptor once its fsync in flight (if any) is done; syncs what is still unsynced. */
  private retire(fd: number): void {
    const pending = this.syncing;
    const finish = () => {
      try {
        if (this.synced < this.written && fd === this.fd && !this.failure) {
          this.sync.fdatasyncSync(fd);
          this.synced = this.written;
        }
      } catch {
        // Closing after a stop: a record that could not be synced is the torn tail of the next start at worst.
      }
      closeSync(fd);
    };
    if (pending) void pending.then(finish);
    else finish();
  }
}

/** Opens the live segment for appending ('a+' that refuses a symbolic link: appends never land outside the folder). */
function openAppend(path: string): number {
  try {
    return openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | NO_FOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkedLog(path);
    throw new UpdateError('STORAGE_FAILED', `Could not open the event log ${path} (${(error as Error).message}); check that the folder is writable.`, { cause: error });
  }
}

/**
 * Completes a rotation a crash interrupted: a `.next` segment with the live one still in place was never
 * switched to (removed; the rotation runs again later); one without it is the new live segment.
 */
function finishRotation(dir: string, path: string): void {
  const next = join(dir, NEXT_SEGMENT);
  const info = lstatSync(next, { throwIfNoEntry: false });
  if (!info) return;
  if (info.isSymbolicLink()) throw symlinkedLog(next);
  if (lstatSync(path, { throwIfNoEntry: false })) unlinkSync(next);
  else renameSync(next, path);
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function firstRecordOf(path: string): LogRecord | null {
  for (const line of readSegmentLines(path, 64 * 1024)) return 'record' in line ? line.record : null;
  return null;
}

function lastRecordOf(path: string): LogRecord | null {
  let last: LogRecord | null = null;
  for (const line of readSegmentLines(path)) if ('record' in line) last = line.record;
  return last;
}

function symlinkedLog(path: string): UpdateError {
  return new UpdateError('STORAGE_FAILED', `The event log ${path} is a symbolic link, which could carry the audit trail outside the model folder. Remove it; model-updater never creates links there.`);
}
