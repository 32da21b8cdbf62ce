/**
 * Preflight: fail before the first byte when the download cannot fit. Content already stored and partial
 * downloads need no new space; versions the switch will drop anyway are removed early when that makes
 * the difference.
 */
import { fromPromise } from 'xstate';
import type { CheckDiskSpaceInput, CheckDiskSpaceOutput } from '../../../machines/types.js';
import { exclusiveBytes } from '../../../machines/retention.js';
import { UpdateError } from '../errors.js';
import type { FileDigest } from '../../../machines/types.js';
import type { StagingArea } from '../ports/stagingArea.js';
import type { ModelStore } from '../ports/modelStore.js';

const MiB = 1024 * 1024;

export function requiredBytes(missing: number, total: number, margin: number): number {
  return missing + Math.ceil(total * margin) + MiB;
}

/**
 * Bytes still to download for these files: content the store already holds (shared with another
 * version) needs none, a partly staged file only its rest.
 * @example
 * await missingBytes(store, staging, '1.2.0', candidate.files) // 0 when everything is local
 */
export async function missingBytes(store: ModelStore, staging: StagingArea, version: string, files: ReadonlyArray<Pick<FileDigest, 'path' | 'size' | 'sha256'>>): Promise<number> {
  let missing = 0;
  for (const file of files) {
    if (await store.hasContent(file.sha256)) continue;
    const partial = await staging.size({ version, path: file.path }).catch(() => 0);
    missing += Math.max(0, file.size - partial);
  }
  return missing;
}

export function createCheckDiskSpace(store: ModelStore, staging: StagingArea) {
  return fromPromise<CheckDiskSpaceOutput, CheckDiskSpaceInput>(async ({ input }) => {
    const total = input.files.reduce((sum, file) => sum + file.size, 0);
    const needed = requiredBytes(await missingBytes(store, staging, input.version, input.files), total, input.margin);
    const freeBytes = await store.freeBytes();
    if (freeBytes >= needed) return { freeBytes, retained: null };

    const freeable = exclusiveBytes(input.droppedAfterSwitch, [...input.retainedAfterSwitch, { version: input.version, files: input.files }]);
    if (input.droppedAfterSwitch.length && freeBytes + freeable >= needed) {
      const pointer = await store.readPointer();
      if (pointer) await store.writePointer({ ...pointer, retained: input.retainedAfterSwitch });
      await store.collectGarbage([...(pointer ? [pointer.active.version] : []), ...input.retainedAfterSwitch.map((v) => v.version)], [input.version]);
      const after = await store.freeBytes();
      if (after >= needed) return { freeBytes: after, retained: input.retainedAfterSwitch };
    }
    const mb = (bytes: number) => (bytes / MiB).toFixed(1);
    throw new UpdateError(
      'INSUFFICIENT_DISK_SPACE',
      `Version ${input.version} needs ${mb(needed)} MB free in ${store.location} but only ${mb(freeBytes)} MB is available${freeable ? ` (${mb(freeable)} MB more could be freed from old versions)` : ''}. Free some space there; the update will be tried again on the next check.`,
    );
  });
}
