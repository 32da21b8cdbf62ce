/**
 * Runs the host's migrate hook, which converts host data for the new version.
 */
import { fromPromise } from 'xstate';
import type { ModelStepInput } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import { withDeadline } from '../hookDeadline.js';
import type { LoadedModels, ModelLoader } from '../modelRef.js';

export function createRunMigration(loader: ModelLoader<any>, models: LoadedModels<any>) {
  return fromPromise<void, ModelStepInput>(async ({ input, signal }) => {
    if (!loader.migrate) return;
    const migrate = loader.migrate.bind(loader);
    const from = input.from ? models.ref(input.from) : null;
    try {
      const to = models.ref(input.to);
      await withDeadline(models.deadlines, 'migrate', input.to.version, (deadline) =>
        migrate({ from, to, signal: AbortSignal.any([signal, deadline]), ...(to.metadata === undefined ? {} : { metadata: to.metadata }) }),
      );
    } catch (error) {
      if ((error as UpdateError)?.code === 'HOOK_TIMEOUT') throw error;
      throw new UpdateError(
        'MIGRATION_FAILED',
        `The host's migrate hook failed for ${from?.version ?? 'no version'} → ${input.to.version}: ${(error as Error)?.message ?? error}. The previous version stays active.`,
        { cause: error },
      );
    }
  });
}
