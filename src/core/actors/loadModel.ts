/**
 * Loads the new version through the host's load hook, beside the one in use.
 */
import { fromPromise } from 'xstate';
import type { ModelStepInput } from '../../../machines/types.js';
import type { LoadedModels } from '../modelRef.js';

export function createLoadModel(models: LoadedModels<any>) {
  return fromPromise<void, ModelStepInput>(async ({ input }) => {
    await models.load(input.to);
  });
}
