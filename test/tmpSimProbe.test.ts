import { it } from 'vitest';
import { simulate, type SimulatedHost } from '../src/testing/index.js';
it('probe', async () => {
  const inPlace = (host: SimulatedHost) => ({
    migrate: async ({ to }: { to: { version: string } }) => host.data.set('format', to.version),
    load: (model: { version: string }) => {
      const format = host.data.get<string>('format');
      if (format !== undefined && format !== model.version) throw new Error(`data is in format ${format}, not ${model.version}`);
      return model.version;
    },
  });
  const t = Date.now();
  const report = await simulate({ hooks: inPlace, runs: 100, seed: 8 });
  console.log('took', Date.now() - t, report.ok, report.counterexample?.path, report.counterexample?.commands.length);
}, 600_000);
