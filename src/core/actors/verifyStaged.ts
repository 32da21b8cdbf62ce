/**
 * Compares what was downloaded with what the manifest promised; a mismatch discards the staged version.
 */
import { fromPromise } from 'xstate';
import type { VerifyInput } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import type { ModelStore } from '../ports/modelStore.js';

/** The first difference between the manifest's files and the downloaded digests, or null. */
export function integrityProblem({ candidate, digests }: VerifyInput): string | null {
  for (const file of candidate.files) {
    const got = digests.find((digest) => digest.path === file.path);
    if (!got) return `file "${file.path}" was not downloaded`;
    if (got.size !== file.size) return `file "${file.path}" has ${got.size} bytes, the manifest says ${file.size}`;
    if (got.sha256 !== file.sha256) return `file "${file.path}" has SHA-256 ${got.sha256}, the manifest says ${file.sha256}`;
  }
  return null;
}

export function createVerifyStaged(store: ModelStore) {
  return fromPromise<void, VerifyInput>(async ({ input }) => {
    const problem = integrityProblem(input);
    if (problem === null) return;
    await store.discardStaging(input.candidate.version);
    throw new UpdateError(
      'INTEGRITY_MISMATCH',
      `Version ${input.candidate.version} failed verification: ${problem}. The staged files were deleted and the active version is unchanged; if this repeats, the update service is serving damaged files and should publish again.`,
    );
  });
}
