/**
 * Preflight: fail before the first byte when the download cannot fit.
 */
import { fromPromise } from 'xstate';
import type { CheckDiskSpaceInput, CheckDiskSpaceOutput } from '../../machines/types.js';
import { UpdateError } from '../errors.js';
import type { ModelStore } from '../store.js';

const MiB = 1024 * 1024;

export function requiredBytes(input: CheckDiskSpaceInput, alreadyStaged: number): number {
  return Math.max(0, input.bytesNeeded - alreadyStaged) + Math.ceil(input.bytesNeeded * input.margin) + MiB;
}

export function createCheckDiskSpace(store: ModelStore) {
  return fromPromise<CheckDiskSpaceOutput, CheckDiskSpaceInput>(async ({ input }) => {
    const [freeBytes, staged] = await Promise.all([store.freeBytes(), store.stagedBytes(input.version)]);
    const needed = requiredBytes(input, staged);
    if (freeBytes < needed) {
      const mb = (bytes: number) => (bytes / MiB).toFixed(1);
      throw new UpdateError(
        'INSUFFICIENT_DISK_SPACE',
        `Version ${input.version} needs ${mb(needed)} MB free in ${store.location} but only ${mb(freeBytes)} MB is available. Free some space there; the update will be tried again on the next check.`,
      );
    }
    return { freeBytes };
  });
}
