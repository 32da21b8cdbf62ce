/**
 * The audit trail in words: one line per record, for the CLI and for hosts that show it.
 */
import type { LogRecord } from './record.js';

/** A short human reading of one record's data. */
export function summarize(record: LogRecord): string {
  const data = record.data as Record<string, any>;
  if (data.error) return `${data.error.code}: ${data.error.message}`;
  switch (record.type) {
    case 'log.gc':
      return `gc: removed ${data.removedVersions.join(', ') || 'no versions'}, freed ${data.freedBytes} bytes`;
    case 'CHECK':
      return `check (${data.trigger})`;
    case 'ROLLBACK':
      return `rollback${data.to ? ` to ${data.to}` : ''}`;
    case 'PROGRESS':
      return `${data.progress.version}: ${data.progress.bytes}/${data.progress.total} bytes, ${data.progress.bytesPerSecond} B/s`;
    case 'xstate.done.actor.fetchManifest':
      if (data.output.notModified) return 'manifest unchanged (304 or same serial)';
      return [
        `manifest: ${data.output.manifest.versions.length} version(s)`,
        data.output.manifest.serial === undefined ? '' : `, serial ${data.output.manifest.serial}`,
        data.output.rotated ? `, trusted keys rotated (${data.output.trust.keys.length}, threshold ${data.output.trust.threshold})` : '',
        data.output.unsigned ? ' WARNING: unsigned, accepted because allowUnsigned is set' : '',
      ].join('');
    case 'xstate.done.actor.downloadVersion':
      return data.output.discardedContent ? `removed stored content that did not match its SHA-256: ${data.output.discardedContent.join(', ')}` : '';
    case 'xstate.done.actor.switchActive':
    case 'xstate.done.actor.restoreVersion':
      return `active: ${data.output.active?.version ?? 'none'}`;
    case 'xstate.init':
      return `log started (app ${data.input.config.appVersion ?? 'any'}, channel ${data.input.config.channel})`;
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
  return `${String(record.seq).padStart(5)}  ${record.ts}  ${session}  ${record.type.replace('xstate.', '')}  ${summarize(record)}`.trimEnd();
}
