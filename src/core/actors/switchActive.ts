/**
 * The commit point: points the store at the new version atomically, then retires what retention drops.
 */
import { fromPromise } from 'xstate';
import type { ModelStepInput, SwitchOutput } from '../../../machines/types.js';
import { planRetention, type RetentionPolicy } from '../../../machines/retention.js';
import type { LoadedModels } from '../modelRef.js';
import type { ModelStore } from '../ports/modelStore.js';
import type { LogHead } from '../log/logAnchor.js';

export function createSwitchActive(store: ModelStore, models: LoadedModels<any>, policy: RetentionPolicy, now: () => number, logHead?: () => Promise<LogHead | null>) {
  return fromPromise<SwitchOutput, ModelStepInput>(async ({ input }) => {
    const current = await store.readPointer();
    // Run twice (a restart after the switch), this finds the switch done and changes nothing.
    if (current?.active.version !== input.to.version) {
      const { retained } = planRetention(input.to, current?.active ?? null, current?.retained ?? [], policy);
      // The pointer also anchors the end of the log as it is now (see logAnchor.ts).
      const head = await logHead?.();
      await store.writePointer({ schemaVersion: 1, active: input.to, retained, switchedAt: new Date(now()).toISOString(), ...(head ? { logHead: head } : {}) });
    }
    const pointer = (await store.readPointer())!;
    // Old files go only now, after the switch: readers keep using the old version until then.
    await store.collectGarbage([pointer.active, ...pointer.retained].map((kept) => kept.version)).catch(() => undefined);
    // An unload past its deadline fails the switch (HOOK_TIMEOUT): the chart rolls back to the old version.
    if (input.from) await models.unload(input.from, { timeoutFails: true });
    return { active: pointer.active, retained: pointer.retained };
  });
}
