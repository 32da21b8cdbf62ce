/**
 * A host app's hooks for a speech model whose users keep adaptations (custom words), stored per user in
 * the host's own data. Each model version reads them in its own format, so migrate converts them.
 */
// In an app: `from 'model-updater'` and `from 'model-updater/testing'`. Here the repository's source, so the example tracks it.
import type { ModelLoader } from '../../src/index.js';
import type { SimulatedHost } from '../../src/testing/index.js';

const USERS = ['ada', 'grace', 'linus'];

interface Adaptation {
  format: string;
  words: string[];
}

/**
 * The bug: migrate converts every user's adaptation in place, one write at a time. Interrupted halfway,
 * or followed by a rollback, it leaves data the active version cannot read: the app starts without a model.
 */
export function buggyHooks(host: SimulatedHost): ModelLoader<string> {
  return {
    async migrate({ from, to }) {
      for (const user of USERS) {
        const old = host.data.get<Adaptation>(`user/${user}`);
        if (from === null || old === undefined) await host.data.set(`user/${user}`, { format: to.version, words: [] });
        else await host.data.set(`user/${user}`, { format: to.version, words: old.words });
      }
    },
    load(model) {
      for (const user of USERS) {
        const adaptation = host.data.get<Adaptation>(`user/${user}`);
        if (adaptation && adaptation.format !== model.version) throw new Error(`${user}'s adaptation is in format ${adaptation.format}, model ${model.version} cannot read it`);
      }
      return `session for ${model.version}`;
    },
  };
}

/** The fix: write the converted data beside the old, keyed by version; the old version keeps its own. */
export function fixedHooks(host: SimulatedHost): ModelLoader<string> {
  return {
    async migrate({ from, to }) {
      for (const user of USERS) {
        const old = from ? host.data.get<Adaptation>(`${from.version}/user/${user}`) : undefined;
        await host.data.set(`${to.version}/user/${user}`, { format: to.version, words: old?.words ?? [] });
      }
    },
    load(model) {
      for (const user of USERS) {
        const adaptation = host.data.get<Adaptation>(`${model.version}/user/${user}`);
        if (adaptation && adaptation.format !== model.version) throw new Error(`${user}'s adaptation is damaged`);
      }
      return `session for ${model.version}`;
    },
  };
}
