/**
 * Moves a verified version from staging into the versioned store.
 */
import { fromPromise } from 'xstate';
import type { ModelStepInput } from '../../../machines/types.js';
import type { ModelStore } from '../ports/modelStore.js';

export function createStageVersion(store: ModelStore) {
  return fromPromise<void, ModelStepInput>(async ({ input }) => {
    await store.promote(input.to.version, input.to.files);
  });
}
