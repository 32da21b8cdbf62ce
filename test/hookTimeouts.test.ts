/**
 * Hooks that hang: migrate, load, healthCheck and unload each have a deadline on the updater's clock
 * (here xstate's SimulatedClock). Past it the update rolls back with HOOK_TIMEOUT, the old model stays
 * active, and the folder lock is released when the updater stops. Real files, a real loopback server.
 */
import { SimulatedClock } from 'xstate';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_HOOK_TIMEOUTS, type HookName } from '../src/core/hookDeadline.js';
import type { ModelLoader } from '../src/core/modelRef.js';
import { createWorld, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
  await world.install('1.0.0');
  await world.publishVersion('1.1.0');
});
afterEach(() => world.close());

/**
 * A loader whose `hook` never returns for `version`; `entered` resolves when it is called, and `signal`
 * is the abort signal migrate got.
 */
function hangingLoader(hook: HookName, version: string) {
  let entered!: () => void;
  const reached = new Promise<void>((resolve) => (entered = resolve));
  const state: { signal?: AbortSignal } = {};
  const hang = (at: string) => {
    if (at !== version) return undefined;
    entered();
    return new Promise<never>(() => undefined);
  };
  const loader: ModelLoader<{ version: string }> = {
    migrate: ({ to, signal }) => {
      if (hook !== 'migrate') return;
      state.signal = signal;
      return hang(to.version);
    },
    load: (model) => (hook === 'load' ? (hang(model.version) ?? { version: model.version }) : { version: model.version }),
    healthCheck: (model) => (hook === 'healthCheck' ? hang(model.version) : true),
    unload: (model) => (hook === 'unload' ? hang(model.version) : undefined),
  };
  return { loader, reached, state };
}

/** The folder's lock is free: another updater starts on it. */
async function lockIsFree() {
  const next = world.updater();
  await next.start();
  expect(next.active?.version).toBe('1.0.0');
  next.stop();
}

describe('hook deadlines (HOOK_TIMEOUT)', () => {
  // The unload that hangs is the old version's, after the switch; the others hang on the new version.
  const cases: Array<[HookName, string]> = [
    ['migrate', '1.1.0'],
    ['load', '1.1.0'],
    ['healthCheck', '1.1.0'],
    ['unload', '1.0.0'],
  ];
  for (const [hook, version] of cases) {
    it(`${hook === 'unload' ? 'an' : 'a'} ${hook} that never returns rolls the update back after its default deadline (${DEFAULT_HOOK_TIMEOUTS[hook]} ms)`, async () => {
      const clock = new SimulatedClock();
      const { loader, reached, state } = hangingLoader(hook, version);
      const updater = world.updater({ clock, loader });
      await updater.start();
      const checking = updater.check();
      await reached;
      clock.increment(DEFAULT_HOOK_TIMEOUTS[hook]);
      const result = await checking;

      expect(result).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', error: { code: 'HOOK_TIMEOUT' } });
      expect(result.error!.message).toContain(`${hook} hook`);
      expect(result.error!.message).toContain(`${DEFAULT_HOOK_TIMEOUTS[hook]} ms`);
      expect(result.error!.message).toContain(`hookTimeouts.${hook}`);
      expect(updater.active?.version).toBe('1.0.0');
      expect(updater.model).toEqual({ version: '1.0.0' });
      if (hook === 'migrate') expect(state.signal?.aborted).toBe(true);
      updater.stop();
      await lockIsFree();
    });
  }

  it('hookTimeouts changes a deadline: one millisecond short of it nothing happens', async () => {
    const clock = new SimulatedClock();
    const { loader, reached } = hangingLoader('healthCheck', '1.1.0');
    const updater = world.updater({ clock, loader, hookTimeouts: { healthCheck: 5_000 } });
    await updater.start();
    const checking = updater.check();
    await reached;
    clock.increment(4_999);
    expect(updater.getSnapshot().matches({ migrating: 'checkingHealth' })).toBe(true);
    clock.increment(1);
    expect(await checking).toMatchObject({ outcome: 'rolled-back', error: { code: 'HOOK_TIMEOUT', message: expect.stringContaining('5000 ms') } });
  });

  it('a load that never returns at start() rejects start() with HOOK_TIMEOUT; stop() frees the folder', async () => {
    const clock = new SimulatedClock();
    const { loader, reached } = hangingLoader('load', '1.0.0');
    const updater = world.updater({ clock, loader });
    const starting = updater.start();
    await reached;
    clock.increment(DEFAULT_HOOK_TIMEOUTS.load);
    await expect(starting).rejects.toMatchObject({ code: 'HOOK_TIMEOUT' });
    updater.stop();
    await lockIsFree();
  });

  it('rejects a hookTimeouts value that is not a positive number of milliseconds', () => {
    expect(() => world.updater({ hookTimeouts: { load: 0 } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
