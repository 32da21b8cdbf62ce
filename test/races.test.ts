/**
 * Races, with fast-check's scheduler choosing the order in which every store, service and hook result
 * arrives: host calls (check, approve, cancel, rollback, confirm, conditionsChanged) land in EVERY state
 * of the chart, enumerated from the machine definition, and concurrent check() calls share one session
 * and one download.
 */
import fc from 'fast-check';
import type { AnyStateNode } from 'xstate';
import { describe, expect, it } from 'vitest';
import { updaterMachine } from '../machines/updater.machine.js';
import { statePath } from '../src/core/statePath.js';
import { checkInvariants, FIRST_OBSERVATION, SimulatedWorld, correctHooks, type SimulatedHooks, type SimulatedWorldOptions } from '../src/testing/index.js';
import type { ModelUpdater } from '../src/core/createUpdater.js';

type Call = 'check' | 'approve' | 'cancel' | 'rollback' | 'confirm' | 'conditionsChanged';
const CALLS: Call[] = ['check', 'approve', 'cancel', 'rollback', 'confirm', 'conditionsChanged'];
const calls: Record<Call, (u: ModelUpdater<any>) => Promise<any> | void> = {
  check: (u) => u.check(),
  approve: (u) => u.approve(),
  cancel: (u) => u.cancel(),
  rollback: (u) => u.rollback(),
  confirm: (u) => u.confirm(),
  conditionsChanged: (u) => u.conditionsChanged(),
};

/**
 * Every state a host call can arrive in: the chart's atomic states, read from its definition, less the
 * transient ones (an unguarded `always` leaves them in the same step, so no snapshot ever shows them).
 */
function chartStates(node: AnyStateNode = updaterMachine.root, prefix = ''): string[] {
  return Object.entries(node.states).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (Object.keys(child.states).length > 0) return chartStates(child, path);
    const transient = child.always?.some((transition) => !transition.guard) ?? false;
    return transient ? [] : [path];
  });
}

/** The situations an update is started in; together they lead the chart through every state. */
interface Scene {
  name: string;
  updater?: SimulatedWorldOptions['updater'];
  /** Arms what makes this scene's update take its path, just before the check. */
  arm?: (world: SimulatedWorld<any>) => void;
}
const SCENES: Scene[] = [
  { name: 'an update that goes through', updater: { policy: { approval: 'auto' } } },
  { name: 'an update awaiting approval', updater: { policy: { approval: 'ask' } } },
  { name: 'a new version that fails its health check', arm: (world) => world.loader.inject({ hook: 'healthCheck', effect: 'unhealthy', version: '1.1.0', repeat: 'once' }) },
  { name: 'an unreachable service (session fails)', arm: (world) => (world.service.faults = { offline: true }) },
  { name: 'a service answering 503 Retry-After (deferred)', updater: { retry: { maxCheckAttempts: 3 } }, arm: (world) => (world.service.faults = { unavailable: { retryAfterMs: 5_000 } }) },
  { name: 'a download cut off (retried after a wait)', updater: { retry: { maxDownloadAttempts: 3 } }, arm: (world) => (world.service.faults = { truncateAfter: 2_000 }) },
  { name: 'a download condition not met at first', updater: { policy: { downloadWhen: { unmetered: () => !unmetOnce.take() } } }, arm: () => unmetOnce.arm() },
  { name: 'activation at the next start (staged)', updater: { activation: 'next-start' } },
];

/** A download condition unmet the first time it is asked after arm(), met otherwise. */
const unmetOnce = {
  armed: false,
  arm() {
    this.armed = true;
  },
  take() {
    const armed = this.armed;
    this.armed = false;
    return armed;
  },
};

/**
 * Lets the scheduler release one result (or one host call) at a time, in the order it chooses, and the
 * world run as far as it can after each, until nothing is left.
 */
async function drain(s: fc.Scheduler, world: SimulatedWorld<any>) {
  for (let round = 0; round < 500; round++) {
    await world.settle();
    if (s.count() === 0) return;
    await s.waitOne();
  }
  throw new Error('the world did not come to rest');
}

/** Heals every fault and lets time pass until the chart rests in a settled state that waits for nothing. */
async function rest(s: fc.Scheduler, world: SimulatedWorld<any>) {
  world.heal();
  for (let round = 0; round < 20; round++) {
    await drain(s, world);
    const snapshot = world.updater!.getSnapshot();
    if (snapshot.hasTag('settled') && !snapshot.hasTag('waiting')) return;
    world.clock.increment(600_000);
  }
}

/** 1.0.0 installed, 1.1.0 published, with the scheduler in charge from now on. */
async function setScene(s: fc.Scheduler, scene: Scene) {
  const world = new SimulatedWorld({
    hooks: correctHooks as SimulatedHooks,
    updater: { retry: { maxDownloadAttempts: 1, maxCheckAttempts: 1 }, ...scene.updater, policy: { approval: 'auto', ...scene.updater?.policy } },
    interpose: (label, result) => s.schedule(result, label),
  });
  world.interposing = false;
  world.service.publish('1.0.0', { 'model.bin': new Uint8Array(5000).fill(1) });
  void world.boot();
  await world.settle();
  world.call('check', (u) => u.check());
  await world.settle();
  world.call('approve', (u) => u.approve());
  await rest(s, world);
  if (world.state() === 'staged') {
    // Activation at the next start: 1.0.0 waits for a restart.
    world.crash({ dropUnsynced: false });
    void world.boot();
    await rest(s, world);
  }
  expect(world.updater!.active?.version).toBe('1.0.0');
  world.service.publish('1.1.0', { 'model.bin': new Uint8Array(5000).fill(2), 'vocab.txt': 'tokens' });
  world.interposing = true;
  return world;
}

/**
 * Starts the scene's update and, the moment the chart enters `state` (from its own subscription, so even
 * a state left within the same tick is hit), makes the host calls of `burst` there. Returns whether the
 * state was reached and every state the chart went through.
 */
async function raceIn(s: fc.Scheduler, scene: Scene, state: string | null, burst: Call[], afterwards: Call[]) {
  const world = await setScene(s, scene);
  const visited = new Set<string>();
  let fired = false;
  try {
    let seen = await checkInvariants(world, FIRST_OBSERVATION);
    const subscription = world.updater!.subscribe((snapshot) => {
      const path = statePath(snapshot);
      visited.add(path);
      if (fired || path !== state) return;
      fired = true;
      for (const name of burst) world.call(name, calls[name] as never);
    });
    scene.arm?.(world);
    world.call('check', (u) => u.check());
    await drain(s, world);
    seen = await checkInvariants(world, seen);
    // More calls at moments the scheduler picks, then the faults end and time passes until all is done.
    s.scheduleSequence(afterwards.map((name) => ({ label: name, builder: async () => world.call(name, calls[name] as never) })));
    await rest(s, world);
    subscription.unsubscribe();
    seen = await checkInvariants(world, seen);
    // Whatever happened, the host ends with a settled chart and a working model.
    const snapshot = world.updater!.getSnapshot();
    expect(snapshot.hasTag('settled') && !snapshot.hasTag('waiting'), `ends in ${world.state()}`).toBe(true);
    expect(['1.0.0', '1.1.0']).toContain(world.updater!.active?.version);
    expect(world.loader.loaded.has(world.updater!.active!.version)).toBe(true);
    return { fired, visited };
  } finally {
    world.crash({ dropUnsynced: false });
  }
}

const STATES = chartStates();

/** For each state, the first scene whose update goes through it (found by running each scene once). */
let sceneOf: Map<string, Scene> | undefined;
async function sceneFor(state: string): Promise<Scene | undefined> {
  if (!sceneOf) {
    sceneOf = new Map();
    for (const scene of SCENES) {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), async (s) => {
          const { visited } = await raceIn(s, scene, null, [], []);
          for (const path of visited) if (!sceneOf!.has(path)) sceneOf!.set(path, scene);
        }),
        { numRuns: 1 },
      );
    }
  }
  return sceneOf.get(state);
}

describe('races: host calls landing in every state of the chart', () => {
  it('the chart definition names the states the issue asks for', () => {
    expect(STATES).toEqual(expect.arrayContaining(['idle.ready', 'idle.deferred', 'downloading.retryWait', 'downloading.waitingForConditions', 'verifying', 'staged', 'rolledBack']));
    expect(STATES).not.toContain('deciding'); // transient: never in a snapshot
  });

  it.each(STATES)('calls arriving in %s, in any order, keep every invariant', async (state) => {
    const scene = await sceneFor(state);
    expect(scene, `no scene leads the chart through ${state}: add one to SCENES`).toBeDefined();
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.shuffledSubarray(CALLS, { minLength: 1, maxLength: 4 }),
        fc.array(fc.constantFrom(...CALLS), { maxLength: 2 }),
        async (s, burst, afterwards) => {
          const { fired } = await raceIn(s, scene!, state, burst, afterwards);
          expect(fired, `${scene!.name} did not reach ${state}`).toBe(true);
        },
      ),
      { numRuns: 4 },
    );
  }, 30_000);

  it('many concurrent check() calls share one session and one download', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 8 }), async (s, n) => {
        const world = await setScene(s, SCENES[0]!);
        try {
          const before = world.service.requests.filter((r) => r.kind === 'file').length;
          // n checks at once; the scheduler then picks the order of everything the update waits for.
          for (let i = 0; i < n; i++) world.call('check', (u) => u.check());
          await drain(s, world);
          const files = world.service.requests.filter((r) => r.kind === 'file').length - before;
          expect(files).toBe(2); // the two files of 1.1.0, once each
          const results = world.results.slice(-n);
          expect(results).toHaveLength(n);
          expect(new Set(results.map((r) => r.result.sessionId)).size).toBe(1);
          expect(results.every((r) => r.result.outcome === 'activated')).toBe(true);
          expect(world.logDisk.records.filter((r) => r.type === 'version.activated')).toHaveLength(2);
        } finally {
          world.crash({ dropUnsynced: false });
        }
      }),
      { numRuns: 40 },
    );
  }, 30_000);
});
