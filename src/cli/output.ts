/**
 * How the CLI talks: JSON on request (one object on stdout), text otherwise, errors with their code.
 */
import { isUpdateError, toErrorData } from '../core/errors.js';
import type { DownloadProgress } from '../../machines/types.js';

export class CliOutput {
  constructor(readonly json: boolean) {}

  /** Prints the command's result: the object as JSON, or the text lines. */
  result(object: Record<string, unknown>, text: string[]): void {
    if (this.json) process.stdout.write(`${JSON.stringify(object)}\n`);
    else for (const line of text) process.stdout.write(`${line}\n`);
  }

  /** Prints a failure and returns the exit code. */
  failure(error: unknown, extra: Record<string, unknown> = {}): number {
    const data = toErrorData(error);
    if (this.json) process.stdout.write(`${JSON.stringify({ ok: false, ...extra, error: { code: data.code, message: data.message } })}\n`);
    else process.stderr.write(`error ${data.code}: ${data.message}\n`);
    if (!isUpdateError(error) && data.code === 'UNKNOWN' && error instanceof Error && process.env.DEBUG) {
      process.stderr.write(`${error.stack}\n`);
    }
    return 1;
  }

  /** Draws a one-line progress bar on a terminal; silent otherwise. */
  progress(p: DownloadProgress): void {
    if (this.json || !process.stderr.isTTY) return;
    const width = 30;
    const ratio = p.total > 0 ? p.bytes / p.total : 1;
    const filled = Math.round(ratio * width);
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    const eta = p.etaSeconds === null ? '--' : `${p.etaSeconds}s`;
    process.stderr.write(
      `\r${p.version} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${mb(p.bytes)}/${mb(p.total)} MB ${mb(p.bytesPerSecond)} MB/s ETA ${eta}  `,
    );
    if (p.bytes >= p.total) process.stderr.write('\n');
  }
}
