/**
 * The audit trail in words: one line per record, for the CLI and for hosts that show it. Records are read
 * as domain events (0.1.0 records upcast), so old and new parts of a log read alike.
 */
import { domainEventOf, isMachineRecord } from './domainEvents.js';
import type { LogRecord } from './record.js';

/** The record as the trail names it: its domain event, or the record itself for `log.*` bookkeeping. */
function readable(record: LogRecord): { type: string; data: Record<string, any> } {
  if (!isMachineRecord(record)) return record;
  try {
    return domainEventOf(record);
  } catch {
    // Shown as written: the trail stays readable; replay is what refuses such a record.
    return { type: `${record.type} (unknown to this model-updater)`, data: record.data };
  }
}

/** A short human reading of one record's data. */
export function summarize(record: LogRecord): string {
  const { type, data } = readable(record);
  if (data.error) return `${data.error.code}: ${data.error.message}`;
  switch (type) {
    case 'log.gc':
      return `gc: removed ${data.removedVersions.join(', ') || 'no versions'}, freed ${data.freedBytes} bytes`;
    case 'log.format':
      return `records from ${data.firstSeq} on are versioned domain events (format ${data.to}); earlier ones are 0.1.0 records`;
    case 'check.requested':
      return `check (${data.trigger})`;
    case 'rollback.requested':
      return `rollback${data.to ? ` to ${data.to}` : ''}`;
    case 'download.progressed':
      return `${data.progress.version}: ${data.progress.bytes}/${data.progress.total} bytes, ${data.progress.bytesPerSecond} B/s`;
    case 'manifest.unchanged':
      return 'manifest unchanged (304 or same serial)';
    case 'manifest.accepted':
      return [
        `manifest: ${data.versions.length} version(s)`,
        data.serial === null ? '' : `, serial ${data.serial}`,
        data.rotated ? `, trusted keys rotated (${data.trust.keys.length}, threshold ${data.trust.threshold})` : '',
        data.unsigned ? ' WARNING: unsigned, accepted because allowUnsigned is set' : '',
      ].join('');
    case 'download.completed': {
      const size = (data.digests as Array<{ size: number }>).reduce((sum, digest) => sum + digest.size, 0);
      return [
        data.fetchedBytes === undefined ? '' : `fetched ${data.fetchedBytes} of ${size} bytes`,
        data.discardedContent ? `removed stored content that did not match its SHA-256: ${data.discardedContent.join(', ')}` : '',
      ].filter(Boolean).join('; ');
    }
    case 'version.activated':
    case 'rollback.completed':
      return `active: ${data.active?.version ?? 'none'}`;
    case 'updater.created':
      return `log started (app ${data.config.appVersion ?? 'any'}, channel ${data.config.channel})`;
    default:
      return '';
  }
}

/**
 * @example
 * for (const record of readLogFile(path).records) console.log(formatRecord(record))
 */
export function formatRecord(record: LogRecord): string {
  const session = record.session ? record.session.slice(0, 8) : '-'.repeat(8);
  return `${String(record.seq).padStart(5)}  ${record.ts}  ${session}  ${readable(record).type}  ${summarize(record)}`.trimEnd();
}
