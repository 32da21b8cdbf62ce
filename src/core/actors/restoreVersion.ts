/**
 * Makes a known-good version active: after a failed update (unload the new one, keep or put back the old
 * pointer, reload the old model) or on a manual rollback (load, check and switch to a retained version).
 */
import { fromPromise } from 'xstate';
import { planRetention, type RetentionPolicy } from '../../../machines/retention.js';
import type { RestoreOutput, RollbackPlan } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import type { LoadedModels } from '../modelRef.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { LogHead } from '../log/logAnchor.js';

export function createRestoreVersion(store: ModelStore, models: LoadedModels<any>, policy: RetentionPolicy, now: () => number, logHead?: () => Promise<LogHead | null>) {
  return fromPromise<RestoreOutput, RollbackPlan>(async ({ input }) => {
    const { from, to } = input;
    const current = await store.readPointer();
    const others = (current?.retained ?? []).filter((kept) => kept.version !== to?.version && kept.version !== from?.version);

    // The version to go back to is loaded from its folder: a link planted in it must not feed the host.
    // (The bundled model is the app's own folder, outside the store.)
    if (to && to.bundledPath === undefined) await store.checkVersion?.(to.version);
    if (input.manual) {
      if (!to) throw new UpdateError('ROLLBACK_UNAVAILABLE', 'There is no retained version to roll back to; the active version stays. One is kept after the next successful update.');
      try {
        await models.load(to);
        await models.healthCheck(to);
      } catch (error) {
        await models.unload(to);
        throw new UpdateError(
          'ROLLBACK_UNAVAILABLE',
          `Version ${to.version} could not be restored (${(error as Error).message}); ${from?.version ?? 'the current version'} stays active.`,
          { cause: error },
        );
      }
    } else if (from) {
      await models.unload(from);
    }

    // The target loads before the pointer moves: if it cannot, the pointer stays where the chart says.
    if (to) await models.load(to);
    // A manual rollback keeps the version it leaves, and older ones within the count and the byte budget
    // as after a switch (rolling back to the oldest would otherwise keep them all beside it).
    const retained = input.manual && from && to ? planRetention(to, from, others, policy).retained : others;
    if (to && (current?.active.version !== to.version || input.manual)) {
      // The pointer also anchors the end of the log as it is now (see logAnchor.ts).
      const head = await logHead?.();
      await store.writePointer({ schemaVersion: 1, active: to, retained, switchedAt: new Date(now()).toISOString(), ...(head ? { logHead: head } : {}) });
    }
    if (!input.manual && from) {
      // The failed version is not kept: it is not a rollback target. Cleaning up is best effort (as after a
      // switch): a disk that refuses it must not fail the restore; gc() removes the files later.
      const pointer = await store.readPointer();
      const kept = pointer ? [pointer.active, ...pointer.retained].map((version) => version.version) : [];
      await store.collectGarbage([...kept, ...(input.keep ?? [])]).catch(() => undefined);
    }
    if (input.manual && from) await models.unload(from);
    const pointer = await store.readPointer();
    return { active: pointer?.active ?? null, retained: pointer?.retained ?? [] };
  });
}
