/**
 * Model-based simulation: fc.commands over publish, check, approve, cancel, confirm, rollback, gc,
 * faults (service, storage, log, hooks, host data), heal, clock and crash-and-restart, with every
 * invariant checked after every command. A failure prints its seed, its path, the commands and the log.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants, FIRST_OBSERVATION, InvariantViolation, SimulatedWorld, simulate, simulationProperty, type SimulatedHost } from '../src/testing/index.js';

const seed = process.env.SIMULATION_SEED ? Number(process.env.SIMULATION_SEED) : undefined;

describe('simulation', () => {
  it('random failure schedules keep every invariant (fixed budget; npm run simulate for more)', async () => {
    await fc.assert(simulationProperty(), { numRuns: 100, ...(seed === undefined ? {} : { seed }) });
  }, 60_000);

  it('the invariants catch a store that lost the active version behind the updater', async () => {
    const world = new SimulatedWorld();
    world.service.publish('1.0.0', { 'model.bin': 'weights' });
    void world.boot();
    await world.settle();
    world.call('check', (u) => u.check());
    await world.settle();
    const seen = await checkInvariants(world, FIRST_OBSERVATION);
    expect(seen).toMatchObject({ active: '1.0.0', everInstalled: true });
    await world.store.removeVersion('1.0.0');
    await expect(checkInvariants(world, seen)).rejects.toThrow(InvariantViolation);
  });

  it('a host whose migrate converts data in place is caught, with seed, path, commands and log', async () => {
    // The bug: the old version's data is overwritten, so a rollback leaves a model that cannot load.
    const inPlace = (host: SimulatedHost) => ({
      migrate: async ({ to }: { to: { version: string } }) => host.data.set('format', to.version),
      load: (model: { version: string }) => {
        const format = host.data.get<string>('format');
        if (format !== undefined && format !== model.version) throw new Error(`data is in format ${format}, not ${model.version}`);
        return model.version;
      },
    });
    const report = await simulate({ hooks: inPlace, runs: 100, seed: 8 });
    expect(report.ok).toBe(false);
    const example = report.counterexample!;
    expect(example.seed).toBe(8);
    expect(example.path).toMatch(/^\d+(:\d+)*$/);
    expect(example.error).toMatch(/no usable model|load/);
    expect(example.commands.some((c) => c.startsWith('publish'))).toBe(true);
    expect(example.log.length).toBeGreaterThan(2);
    // The path replays exactly that schedule.
    const replayed = await simulate({ hooks: inPlace, seed: 8, path: example.path, replayPath: example.replayPath });
    expect(replayed.counterexample?.commands).toEqual(example.commands);
  }, 30_000);
});
