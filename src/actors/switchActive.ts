/**
 * The commit point: points the store at the new version atomically, then retires what retention drops.
 */
import { fromPromise } from 'xstate';
import type { InstalledVersion, ModelStepInput, SwitchOutput } from '../../machines/types.js';
import type { LoadedModels } from '../modelRef.js';
import type { ModelStore } from '../store.js';

/** Versions kept after a switch: the active one plus `keep - 1` previous ones, newest first. */
export function retainAfterSwitch(
  previous: InstalledVersion | null,
  retained: InstalledVersion[],
  to: string,
  keep: number,
): InstalledVersion[] {
  const candidates = previous ? [previous, ...retained] : retained;
  return candidates.filter((kept) => kept.version !== to).slice(0, Math.max(0, keep - 1));
}

/** Removes versions on disk that are neither active nor retained. Best effort. */
export async function pruneVersions(store: ModelStore, keep: InstalledVersion[]): Promise<void> {
  const wanted = new Set(keep.map((kept) => kept.version));
  for (const version of await store.listVersions()) {
    if (!wanted.has(version)) await store.removeVersion(version).catch(() => undefined);
  }
}

export function createSwitchActive(store: ModelStore, models: LoadedModels<any>, keepVersions: number, now: () => number) {
  return fromPromise<SwitchOutput, ModelStepInput>(async ({ input }) => {
    const current = await store.readPointer();
    // Run twice (a restart after the switch), this finds the switch done and changes nothing.
    if (current?.active.version !== input.to.version) {
      const retained = retainAfterSwitch(current?.active ?? null, current?.retained ?? [], input.to.version, keepVersions);
      await store.writePointer({ schemaVersion: 1, active: input.to, retained, switchedAt: new Date(now()).toISOString() });
    }
    const pointer = (await store.readPointer())!;
    await pruneVersions(store, [pointer.active, ...pointer.retained]);
    if (input.from) await models.unload(input.from);
    return { active: pointer.active, retained: pointer.retained };
  });
}
