/**
 * The event log's files in the model folder: the live segment `events.log`, which the updater appends
 * to, and archived segments `events.<first seq, 12 digits>.log`, which sort in chain order. A rotation
 * writes the next segment (its first record a checkpoint) as `events.log.next`, then renames the live
 * segment to its archive name and `events.log.next` to `events.log`: a crash at any point leaves either
 * the old live segment (and a stale `.next`, removed on open) or the archive plus a complete `.next`
 * (renamed into place on open). Readers here stream: one segment's chunk in memory at a time.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { UpdateError } from '../core/errors.js';
import { ChainVerifier } from '../core/log/chain.js';
import { hashedText, parseRecordLine, type LogRecord, type LogVerification } from '../core/log/record.js';
import { READ_NO_FOLLOW } from './noSymlinks.js';

export const LIVE_SEGMENT = 'events.log';
/** The next live segment while a rotation writes it. */
export const NEXT_SEGMENT = 'events.log.next';
const ARCHIVED = /^events\.(\d{12})\.log$/;

export interface ArchivedSegment {
  name: string;
  path: string;
  /** Sequence number of its first record. */
  firstSeq: number;
}

/**
 * `events.000000001234.log` for a segment whose first record is 1234.
 * @example
 * archiveName(1234) // 'events.000000001234.log'
 */
export function archiveName(firstSeq: number): string {
  return `events.${String(firstSeq).padStart(12, '0')}.log`;
}

/**
 * The archived segments in `dir`, oldest first.
 * @example
 * listArchivedSegments('/var/lib/app/models').map((s) => s.name)
 */
export function listArchivedSegments(dir: string): ArchivedSegment[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => ({ name, match: ARCHIVED.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ name, match }) => ({ name, path: join(dir, name), firstSeq: Number(match[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

function symlinkedSegment(path: string): UpdateError {
  return new UpdateError('STORAGE_FAILED', `The event log segment ${path} is a symbolic link, which could carry the audit trail outside the model folder. Remove it; model-updater never creates links there.`);
}

/** A line of a segment: a record, or damage (a line that is not a whole record) at a byte offset. */
export type SegmentLine = { record: LogRecord } | { damaged: string; torn: boolean };

/**
 * The lines of one segment file, read in chunks (never the whole file at once). A link in place of the
 * file is refused; a missing file has no lines.
 * @example
 * for (const line of readSegmentLines(path)) if ('record' in line) console.log(line.record.seq)
 */
export function* readSegmentLines(path: string, chunkBytes = 1 << 20): Generator<SegmentLine> {
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (!info) return;
  if (info.isSymbolicLink()) throw symlinkedSegment(path);
  let fd: number;
  try {
    fd = openSync(path, READ_NO_FOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkedSegment(path);
    throw error;
  }
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    const decoder = new StringDecoder('utf8');
    let pending = '';
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      pending += decoder.write(buffer.subarray(0, read));
      let start = 0;
      for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
        const line = pending.slice(start, end);
        const record = parseRecordLine(line);
        yield record ? { record } : { damaged: line, torn: false };
        start = end + 1;
      }
      pending = pending.slice(start);
    }
    pending += decoder.end();
    if (pending.length > 0) yield { damaged: pending, torn: true };
  } finally {
    closeSync(fd);
  }
}

/**
 * Every record of the log in `dir`, archived segments first, streamed. A damaged line in an archived
 * segment (which was complete and synced when archived) is LOG_CORRUPT; a torn last line of the live
 * segment is skipped (start-up cuts it) and counted in `torn`.
 * @example
 * for (const record of readAllRecords(dir)) console.log(record.type)
 */
export function* readAllRecords(dir: string, torn: { bytes: number } = { bytes: 0 }): Generator<LogRecord> {
  const segments = [...listArchivedSegments(dir).map((s) => s.path), join(dir, LIVE_SEGMENT)];
  for (const [index, path] of segments.entries()) {
    const live = index === segments.length - 1;
    let last = -1;
    for (const line of readSegmentLines(path)) {
      if ('record' in line) {
        last = line.record.seq;
        yield line.record;
      } else if (live && line.torn) {
        torn.bytes = Buffer.byteLength(line.damaged);
      } else {
        throw new UpdateError('LOG_CORRUPT', `The event log segment ${path} has a damaged record after record ${last}. Run \`model-updater log --quarantine --dir <dir>\` to set the log aside (the installed models stay), or restore it from a backup.`);
      }
    }
  }
}

/** recordHash with node:crypto: the same bytes hashed, several times faster over a million records. */
export function nodeRecordHash(record: Omit<LogRecord, 'hash'>): string {
  return createHash('sha256').update(hashedText(record)).digest('hex');
}

export interface FolderVerification {
  verification: LogVerification;
  /** Bytes of a torn last record of the live segment (cut on the next start). */
  tornTailBytes: number;
  segments: number;
}

/**
 * Verifies the whole chain of the log in `dir` across its segments, streaming; names the first bad record.
 * @example
 * const { verification } = verifyLogFolder(dir); if (!verification.ok) console.error(verification.seq)
 */
export function verifyLogFolder(dir: string): FolderVerification {
  const chain = new ChainVerifier({ hash: nodeRecordHash });
  const archived = listArchivedSegments(dir);
  const segments = [...archived.map((s) => ({ path: s.path, firstSeq: s.firstSeq as number | null })), { path: join(dir, LIVE_SEGMENT), firstSeq: null }];
  let tornTailBytes = 0;
  outer: for (const [index, segment] of segments.entries()) {
    const live = index === segments.length - 1;
    let first = true;
    for (const line of readSegmentLines(segment.path)) {
      if (!('record' in line)) {
        if (live && line.torn) {
          tornTailBytes = Buffer.byteLength(line.damaged);
          continue;
        }
        chain.fail(chain.lastSeq + 1, `is damaged in ${segment.path} (not a whole record)`);
        break outer;
      }
      if (first && segment.firstSeq !== null && line.record.seq !== segment.firstSeq) {
        chain.fail(segment.firstSeq, `the segment ${segment.path} is named for record ${segment.firstSeq} but starts at record ${line.record.seq}`);
        break outer;
      }
      first = false;
      if (chain.push(line.record)) break outer;
    }
  }
  return { verification: chain.result(), tornTailBytes, segments: segments.length };
}
