/**
 * A host bug three steps deep, for measuring the simulator's search: it shows only after an update, a
 * rollback, and then an update that fails (or dies) after its migrate. After a rollback, this host's
 * migrate moves the user's words to the new version instead of copying them (the old copy "was just
 * rolled away from"), but the old version stays active until the switch: if the update then fails or
 * the process dies before the switch, the active version has no words and cannot load.
 */
import semver from 'semver';
import type { ModelLoader } from '../../src/index.js';
import type { SimulatedHost } from '../../src/testing/index.js';

/**
 * @example
 * await simulate({ hooks: threeStepHooks }) // finds: update, update, rollback, update failing after migrate
 */
export function threeStepHooks(host: SimulatedHost): ModelLoader<string> {
  return {
    async migrate({ from, to }) {
      const words = from ? host.data.get<string[]>(`words@${from.version}`) : undefined;
      await host.data.set(`words@${to.version}`, words ?? []);
      if (from && host.data.get('rolledBack')) {
        await host.data.delete(`words@${from.version}`); // the bug: `from` is still the active version
        await host.data.delete('rolledBack');
      }
    },
    async load(model) {
      if (host.data.get(`words@${model.version}`) === undefined) throw new Error(`no words for ${model.version}`);
      const last = host.data.get<string>('loaded');
      if (last !== undefined && semver.lt(model.version, last)) await host.data.set('rolledBack', true);
      await host.data.set('loaded', model.version);
      return `session for ${model.version}`;
    },
  };
}
