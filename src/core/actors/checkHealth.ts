/**
 * Runs the host's health check on the loaded new version.
 */
import { fromPromise } from 'xstate';
import type { ModelStepInput } from '../../../machines/types.js';
import type { LoadedModels } from '../modelRef.js';

export function createCheckHealth(models: LoadedModels<any>) {
  return fromPromise<void, ModelStepInput>(async ({ input }) => {
    await models.healthCheck(input.to);
  });
}
