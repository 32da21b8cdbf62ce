/**
 * What a write the browser refused for quota means to the user, for both staging areas (OPFS and
 * IndexedDB chunks): how much was kept, how much more is needed, and what to free.
 */
import { UpdateError } from '../core/errors.js';
import type { StagedFile } from '../core/ports/stagingArea.js';

const MiB = 1024 * 1024;
const mb = (bytes: number) => (bytes / MiB).toFixed(1);

/**
 * @example
 * throw quotaError({ version: '1.2.0', path: 'model.onnx' }, writtenSoFar, manifestSize, domException)
 */
export function quotaError(file: StagedFile, written: number, expected: number | undefined, error: unknown): UpdateError {
  const need = expected === undefined ? '' : ` ${mb(Math.max(0, expected - written))} MB more is needed for this file (${mb(expected)} MB in all).`;
  return new UpdateError(
    'INSUFFICIENT_DISK_SPACE',
    `The browser refused to store more of ${file.path} of version ${file.version}: this site's storage quota is used up after ${mb(written)} MB.${need} Free that much of this site's storage (other data it keeps, or old model versions with a smaller retention), or let the user grant persistent storage; the ${mb(written)} MB downloaded are kept and the update resumes from there.`,
    { cause: error },
  );
}

