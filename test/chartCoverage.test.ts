/**
 * Coverage of the chart with xstate/graph: every state is reachable, and the shortest path to each one
 * is walked by a real updater in the simulated world (real actors, real store, real service), with the
 * world arranged so that each actor in the path succeeds or fails as the path says.
 */
import { describe, expect, it } from 'vitest';
import { getShortestPaths } from 'xstate/graph';
import type { EventObject } from 'xstate';
import { updaterMachine } from '../machines/updater.machine.js';
import { toInstalled } from '../machines/selectCandidate.js';
import type { UpdaterEvent } from '../machines/types.js';
import type { UpdaterSnapshot } from '../src/core/log/replay.js';
import { statePath } from '../src/core/statePath.js';
import { SimulatedWorld, correctHooks, type SimulatedHooks } from '../src/testing/index.js';

type AnyNode = { key: string; states: Record<string, AnyNode>; invoke: Array<{ id: string }>; always?: unknown[]; transitions?: unknown };

/** Every leaf state of the chart, as a dotted path; `deciding` only passes through (always), so it never rests. */
function leafStates(node: AnyNode = updaterMachine.root as unknown as AnyNode, prefix = ''): string[] {
  const children = Object.values(node.states ?? {});
  if (!children.length) return [prefix];
  return children.flatMap((child) => leafStates(child, prefix ? `${prefix}.${child.key}` : child.key));
}
const TRANSIENT = ['deciding'];

/** The actors invoked in a state (its own and its parents'). */
function invokedIn(path: string): string[] {
  let node = updaterMachine.root as unknown as AnyNode;
  const ids: string[] = [];
  for (const key of path.split('.')) {
    node = node.states[key]!;
    ids.push(...node.invoke.map((invoke) => invoke.id));
  }
  return ids;
}

let charging = true;
/** The scene every path starts from: 0.9.0 retained, 1.0.0 active, 1.1.0 on offer, approval asked. */
async function scene() {
  charging = true;
  const world = new SimulatedWorld({
    hooks: correctHooks as SimulatedHooks,
    updater: {
      policy: { approval: 'ask', schedule: false, downloadWhen: { charging: () => charging } },
      retry: { maxDownloadAttempts: 2, maxCheckAttempts: 2 },
      keepVersions: 3,
    },
  });
  void world.boot();
  await world.settle();
  for (const version of ['0.9.0', '1.0.0']) {
    world.service.publish(version, { 'model.bin': new TextEncoder().encode(`weights ${version}`.repeat(500)) });
    world.call('check', (u) => u.check());
    await world.settle();
    world.call('approve', (u) => u.approve());
    await world.settle();
  }
  world.service.publish('1.1.0', { 'model.bin': new TextEncoder().encode('weights 1.1.0'.repeat(500)), 'vocab.txt': 'tokens' });
  expect(world.updater!.active?.version).toBe('1.0.0');
  return world;
}

const error = (code: string) => ({ code, message: `simulated ${code}` });

/** The events that can happen in a state: host calls, and the invoked actors finishing or failing. */
function eventsFor(world: SimulatedWorld<any>) {
  const manifestUrl = world.service.manifestUrl;
  return (snapshot: UpdaterSnapshot): EventObject[] => {
    const { context } = snapshot;
    const candidate = context.candidate;
    const host: UpdaterEvent[] = [
      { type: 'CHECK', sessionId: 'session', at: 0, trigger: 'manual' },
      { type: 'APPROVE' },
      { type: 'CANCEL' },
      { type: 'ROLLBACK', sessionId: 'rollback', at: 0 },
      { type: 'CONFIRM', reason: 'host' },
      { type: 'RETRY_NOW' },
      { type: 'INTERRUPTED' },
      // activation 'next-start': a check that stages, and the switch to what it staged.
      { type: 'CHECK', sessionId: 'staging', at: 0, trigger: 'manual', stageOnly: true },
      { type: 'APPLY_STAGED', sessionId: 'apply', at: 0 },
    ];
    const actors: EventObject[] = [];
    for (const id of invokedIn(statePath(snapshot))) {
      const done = (output: unknown) => actors.push({ type: `xstate.done.actor.${id}`, output } as EventObject);
      const failed = (code: string) => actors.push({ type: `xstate.error.actor.${id}`, error: error(code) } as EventObject);
      switch (id) {
        case 'fetchManifest':
          done({ notModified: false, etag: '"e"', manifest: world.service.manifest(), trust: context.trust, url: manifestUrl, unsigned: true, rotated: false });
          failed('NETWORK_UNAVAILABLE');
          failed('MANIFEST_INVALID');
          break;
        case 'checkConditions':
          done({ unmet: [] });
          done({ unmet: ['charging'] });
          break;
        case 'checkDiskSpace':
          done({ freeBytes: 1e9, retained: null });
          failed('INSUFFICIENT_DISK_SPACE');
          break;
        case 'downloadVersion':
          done({ digests: candidate!.files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) });
          failed('NETWORK_UNAVAILABLE');
          break;
        case 'switchActive':
          done({ active: toInstalled(candidate!), retained: [context.active!, ...context.retained].slice(0, 2) });
          failed('SWITCH_FAILED');
          break;
        case 'restoreVersion': {
          const to = context.rollback!.to;
          const others = [context.active, ...context.retained].filter((v) => v !== null && v.version !== to?.version);
          done({ active: to, retained: others });
          failed('ROLLBACK_UNAVAILABLE');
          break;
        }
        default:
          done(undefined);
          failed('STORAGE_FAILED');
      }
    }
    return [...host, ...actors] as EventObject[];
  };
}

/** Arranges the world so that the actor behind `event` fails as the path says; host events are sent. */
async function enact(world: SimulatedWorld<any>, event: EventObject, from: string) {
  const failing = event.type.startsWith('xstate.error.actor.') ? event.type.slice('xstate.error.actor.'.length) : null;
  const code = (event as { error?: { code: string } }).error?.code;
  switch (failing) {
    case null:
      break;
    case 'fetchManifest':
      if (code === 'NETWORK_UNAVAILABLE') world.service.faults = { offline: true };
      else world.service.publish('1.2.0', { 'model.bin': 'x' }, { channel: 'Not A Channel' });
      return;
    case 'checkDiskSpace':
      world.store.capacity = world.store.usedBytes() + 1024;
      return;
    case 'downloadVersion':
      world.service.faults = { truncateAfter: 100 };
      return;
    case 'verifyStaged':
      world.service.faults = { corrupt: true };
      return;
    case 'stageVersion':
      world.store.failWrites({ code: 'EIO', after: 0, mode: 'once', only: 'promote' });
      return;
    case 'runMigration':
      world.loader.inject({ hook: 'migrate', effect: 'throw', repeat: 'once' });
      return;
    case 'loadModel':
      world.loader.inject({ hook: 'load', effect: 'throw', version: '1.1.0', repeat: 'once' });
      return;
    case 'checkHealth':
      world.loader.inject({ hook: 'healthCheck', effect: 'unhealthy', repeat: 'once' });
      return;
    case 'switchActive':
      world.store.failWrites({ code: 'EIO', after: 0, mode: 'once', only: 'writePointer' });
      return;
    default:
      throw new Error(`no fixture makes ${failing} fail (in ${from})`);
  }
  const done = event.type === 'xstate.done.actor.checkConditions' && (event as { output?: { unmet: string[] } }).output?.unmet.length;
  if (done) charging = false;
  switch (event.type) {
    case 'CHECK':
      // A staging check is what an updater with activation 'next-start' sends; this world's updater is 'immediate'.
      if ((event as { stageOnly?: boolean }).stageOnly) world.call('check', (u) => void u.actor!.send({ ...(event as UpdaterEvent & { type: 'CHECK' }), sessionId: crypto.randomUUID() }));
      else world.call('check', (u) => u.check());
      break;
    case 'APPLY_STAGED':
      world.call('applyStaged', (u) => u.applyStaged());
      break;
    case 'APPROVE':
      world.call('approve', (u) => u.approve());
      break;
    case 'CANCEL':
      world.call('cancel', (u) => u.cancel());
      break;
    case 'ROLLBACK':
      world.call('rollback', (u) => u.rollback());
      break;
    case 'CONFIRM':
      world.call('confirm', (u) => u.confirm());
      break;
    case 'RETRY_NOW':
      // The wait's timer fires: the simulated clock jumps past any back-off or poll.
      charging = true;
      world.service.faults = {};
      world.clock.increment(3_600_000);
      break;
    case 'INTERRUPTED':
      world.crash({ dropUnsynced: false });
      void world.boot();
      break;
  }
}

/** Whether `steps` appear in `trace` in order (not necessarily next to each other). */
function isSubsequence(steps: string[], trace: string[]): boolean {
  let at = 0;
  for (const state of trace) if (state === steps[at]) at++;
  return at === steps.length;
}

describe('chart coverage (xstate/graph)', () => {
  it('every state is reachable, and the shortest path to each one is walked by a real updater', async () => {
    const setup = await scene();
    const live = setup.updater!.getSnapshot();
    const start = updaterMachine.resolveState({ value: live.value, context: live.context });
    const events = eventsFor(setup);
    setup.crash({ dropUnsynced: false });
    const paths = getShortestPaths(updaterMachine, {
      fromState: start,
      events: events as never,
      serializeState: (snapshot) => {
        const s = snapshot as unknown as UpdaterSnapshot;
        const c = s.context;
        return JSON.stringify([s.value, c.active?.version, c.retained.map((v) => v.version), c.candidate?.version ?? null, c.session?.attempt ?? 0, c.probation !== null, c.blockedBy ?? null, c.session?.stageOnly ?? false, c.staged?.version ?? null]);
      },
    });

    // The shortest of the shortest paths to each leaf state.
    const best = new Map<string, (typeof paths)[number]>();
    for (const path of paths) {
      const target = statePath(path.state as unknown as UpdaterSnapshot);
      if (!best.has(target) || path.steps.length < best.get(target)!.steps.length) best.set(target, path);
    }
    const states = leafStates().filter((state) => !TRANSIENT.includes(state));
    expect(states.filter((state) => !best.has(state))).toEqual([]);

    for (const state of states) {
      const path = best.get(state)!;
      if (process.env.CHART_PATHS) console.log(state, '<-', path.steps.map((step) => step.event.type).join(', '));
      const world = await scene();
      const trace: string[] = [statePath(world.updater!.getSnapshot())];
      const follow = () => world.updater?.subscribe((snapshot) => trace.push(statePath(snapshot)));
      let unsubscribe = follow();
      let from = trace[0]!;
      // Arrange every actor failure (and unmet condition) first: each fixture fires at the one invocation the path fails.
      const arranged = (event: EventObject) => event.type.startsWith('xstate.error.actor.') || event.type === 'xstate.done.actor.checkConditions';
      for (const step of path.steps) if (arranged(step.event)) await enact(world, step.event, from);
      for (const step of path.steps) {
        if (!step.event.type.startsWith('xstate.')) {
          await enact(world, step.event, from);
          if (step.event.type === 'INTERRUPTED') {
            await world.settle();
            unsubscribe?.();
            unsubscribe = follow();
          }
        }
        await world.settle();
        from = statePath(step.state as unknown as UpdaterSnapshot);
      }
      const expected = path.steps.map((step) => statePath(step.state as unknown as UpdaterSnapshot));
      expect({ state, walked: isSubsequence(expected, trace) ? 'all steps' : { expected, trace } }).toEqual({ state, walked: 'all steps' });
      unsubscribe?.();
      world.crash({ dropUnsynced: false });
    }
  }, 30_000);
});
