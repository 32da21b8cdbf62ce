/**
 * The simulator's commands for fast-check's model-based testing: each one acts on the world, waits until
 * nothing moves, then checks every invariant. The model is small on purpose: which versions were
 * published, and what the invariants remember between steps.
 */
import fc from 'fast-check';
import semver from 'semver';
import type { AppendFault } from './memoryEventLog.js';
import type { WriteFault } from './memoryModelStore.js';
import type { ServiceFaults } from './memoryUpdateService.js';
import { checkInvariants, FIRST_OBSERVATION, type Observation } from './invariants.js';
import type { HookFault, HookName } from './simulatedLoader.js';
import type { SimulatedWorld } from './simulatedWorld.js';

export interface SimulationModel {
  published: string[];
  /** Publishes so far: makes every build's bytes different. */
  builds: number;
  seen: Observation;
}

export function initialModel(): SimulationModel {
  return { published: [], builds: 0, seen: FIRST_OBSERVATION };
}

export type SimulationCommand = fc.AsyncCommand<SimulationModel, SimulatedWorld<any>>;

/** One fault the simulator can inject. */
export type Fault =
  | { target: 'service'; faults: ServiceFaults }
  | { target: 'store'; fault: WriteFault }
  | { target: 'disk-full' }
  | { target: 'log'; fault: AppendFault }
  | { target: 'hook'; fault: HookFault }
  | { target: 'host-data'; stallWrite: number };

/** Acts, lets the world run until it rests, then checks the invariants. */
abstract class Step implements SimulationCommand {
  check(_model: Readonly<SimulationModel>): boolean {
    return true;
  }
  async run(model: SimulationModel, world: SimulatedWorld<any>): Promise<void> {
    await this.act(model, world);
    await world.settle();
    model.seen = await checkInvariants(world, model.seen);
  }
  protected abstract act(model: SimulationModel, world: SimulatedWorld<any>): void | Promise<void>;
  abstract toString(): string;
}

/** Deterministic file content for one build. */
function content(build: number, index: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = (build * 7919 + index * 104_729 + 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

export class PublishCommand extends Step {
  constructor(
    readonly bump: 'major' | 'minor' | 'patch',
    readonly sizes: number[],
    /** Reuse the newest version's first file: content shared between versions. */
    readonly shareFirst: boolean,
  ) {
    super();
  }
  protected act(model: SimulationModel, world: SimulatedWorld<any>) {
    publishNext(model, world, this.bump, this.sizes, this.shareFirst);
  }
  toString() {
    return `publish(${this.bump}, [${this.sizes.join(', ')}]${this.shareFirst ? ', shared' : ''})`;
  }
}

/** Publishes the next version (the newest bumped, or 1.0.0) and returns its number. */
function publishNext(model: SimulationModel, world: SimulatedWorld<any>, bump: 'major' | 'minor' | 'patch', sizes: number[], shareFirst: boolean): string {
  const latest = model.published.reduce<string | null>((max, v) => (max === null || semver.gt(v, max) ? v : max), null);
  const version = latest === null ? '1.0.0' : semver.inc(latest, bump)!;
  const build = ++model.builds;
  const files: Record<string, Uint8Array> = {};
  sizes.forEach((size, index) => (files[`part${index}.bin`] = content(build, index, size)));
  const shared = latest === null ? undefined : world.service.content(latest, 'part0.bin');
  if (shareFirst && shared) files['part0.bin'] = shared;
  world.service.publish(version, files);
  model.published.push(version);
  return version;
}

/** Store calls after which a crash falls between a durable write (its fsync done) and the updater acting on it. */
export type StoreBoundary = 'promote' | 'writePointer' | 'discardStaging' | 'collectGarbage' | 'removeVersion';

/**
 * Where a step can be cut off: as a hook of the version at hand starts (so between two hooks), at the
 * host's n-th data write or delete of the step, or just after a store call's fsync.
 */
export type CrashPoint = { at: 'hook'; hook: HookName } | { at: 'host-data'; write: number } | { at: 'store'; call: StoreBoundary; after: number };

/** What goes wrong in one step: the process dies at a crash point (a power cut or not), or a hook of the new version fails. */
export type Interruption = { crash: CrashPoint; powerCut: boolean } | { fail: HookName; effect: 'throw' | 'unhealthy' };

function describeInterruption(interruption: Interruption | null): string {
  if (interruption === null) return '';
  if ('fail' in interruption) return `, ${interruption.fail} ${interruption.effect === 'throw' ? 'throws' : 'reports unhealthy'}`;
  const { crash, powerCut } = interruption;
  const where = crash.at === 'hook' ? `as ${crash.hook} starts` : crash.at === 'host-data' ? `at host data write ${crash.write + 1}` : `after store ${crash.call}${crash.after ? ` #${crash.after + 1}` : ''}`;
  return `, ${powerCut ? 'power cut' : 'crash'} ${where}`;
}

/**
 * Runs `act` with the interruption armed; when the process got stuck at the crash point (or anywhere),
 * the invariants are checked there, then it dies and a new one starts. An interruption the step never
 * reached is taken back, so it cannot fire in a later step.
 */
async function interrupted(model: SimulationModel, world: SimulatedWorld<any>, interruption: Interruption | null, version: string | undefined, act: () => Promise<void>): Promise<void> {
  if (interruption === null) return act();
  const fault: HookFault | null =
    'fail' in interruption
      ? { hook: interruption.fail, effect: interruption.effect === 'unhealthy' && interruption.fail !== 'healthCheck' ? 'throw' : interruption.effect, repeat: 'once', ...(version ? { version } : {}) }
      : interruption.crash.at === 'hook'
        ? { hook: interruption.crash.hook, effect: 'stall', repeat: 'once', ...(version ? { version } : {}) }
        : null;
  if (fault) world.loader.inject(fault);
  if ('crash' in interruption && interruption.crash.at === 'host-data') world.hostData.stallWrite(interruption.crash.write);
  if ('crash' in interruption && interruption.crash.at === 'store') world.stallStoreCall(interruption.crash.call, interruption.crash.after);
  await act();
  await world.settle();
  if (fault) world.loader.remove(fault);
  if ('crash' in interruption) {
    if (interruption.crash.at === 'host-data') world.hostData.heal();
    if (interruption.crash.at === 'store') world.clearStoreStall();
    if (world.process.stalls > 0) {
      model.seen = await checkInvariants(world, model.seen);
      world.crash({ dropUnsynced: interruption.powerCut });
      void world.boot();
    }
  }
}

/**
 * A whole update in one step: the next version is published, check() and (when asked) approve() are
 * called, and the interruption, if any, strikes on the way.
 */
export class UpdateCommand extends Step {
  constructor(
    readonly bump: 'major' | 'minor' | 'patch',
    readonly sizes: number[],
    readonly interruption: Interruption | null,
  ) {
    super();
  }
  protected async act(model: SimulationModel, world: SimulatedWorld<any>) {
    const version = publishNext(model, world, this.bump, this.sizes, false);
    await interrupted(model, world, this.interruption, version, async () => {
      world.call('check', (u) => u.check());
      await world.settle();
      if (world.state() === 'awaitingApproval') world.call('approve', (u) => u.approve());
    });
  }
  toString() {
    return `update(${this.bump}, [${this.sizes.join(', ')}]${describeInterruption(this.interruption)})`;
  }
}

/** Publishes a different build under the newest version number. */
export class ChangeCommand extends Step {
  override check(model: Readonly<SimulationModel>) {
    return model.published.length > 0;
  }
  protected act(model: SimulationModel, world: SimulatedWorld<any>) {
    const latest = model.published.at(-1)!;
    const build = ++model.builds;
    world.service.publish(latest, { 'part0.bin': content(build, 0, 3000) });
  }
  toString() {
    return 'change(newest)';
  }
}

export class CheckCommand extends Step {
  constructor(readonly times: number = 1) {
    super();
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    for (let i = 0; i < this.times; i++) world.call('check', (u) => u.check());
  }
  toString() {
    return this.times === 1 ? 'check()' : `check() x${this.times}`;
  }
}

export class ApproveCommand extends Step {
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.call('approve', (u) => u.approve());
  }
  toString() {
    return 'approve()';
  }
}

export class CancelCommand extends Step {
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.call('cancel', (u) => u.cancel());
  }
  toString() {
    return 'cancel()';
  }
}

export class ConfirmCommand extends Step {
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.call('confirm', (u) => u.confirm());
  }
  toString() {
    return 'confirm()';
  }
}

export class RollbackCommand extends Step {
  /** `oldest`: to the oldest retained version by name; else the default (newest retained). */
  constructor(
    readonly oldest: boolean,
    readonly interruption: Interruption | null = null,
  ) {
    super();
  }
  protected async act(model: SimulationModel, world: SimulatedWorld<any>) {
    await interrupted(model, world, this.interruption, undefined, async () =>
      world.call('rollback', (u) => {
        const retained = world.halted ? [] : u.getSnapshot().context.retained;
        return this.oldest && retained.length ? u.rollback(retained.at(-1)!.version) : u.rollback();
      }),
    );
  }
  toString() {
    return `${this.oldest ? 'rollback(oldest' : 'rollback('}${describeInterruption(this.interruption).replace(/^, /, this.oldest ? ', ' : '')})`;
  }
}

/** gc(), then nothing but the active and retained versions may be left in the store. */
export class GcCommand extends Step {
  override async run(model: SimulationModel, world: SimulatedWorld<any>): Promise<void> {
    await super.run(model, world);
    const updater = world.updater;
    if (!updater || world.halted || world.process.stalls > 0 || world.startState === 'starting') return;
    const snapshot = updater.getSnapshot();
    if (!snapshot.hasTag('settled') || world.store.stagedVersions().length) return;
    const kept = [snapshot.context.active, ...snapshot.context.retained].filter((v) => v !== null).map((v) => v.version).sort();
    const stored = (await world.store.listVersions()).sort();
    if (world.store.failed.length === 0 && JSON.stringify(kept) !== JSON.stringify(stored)) {
      throw new Error(`after gc() the store holds [${stored.join(', ')}] but retention keeps [${kept.join(', ')}]`);
    }
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.call('gc', async (u) => {
      await u.gc();
      return { sessionId: 'gc', outcome: 'up-to-date', version: null, error: null };
    });
  }
  toString() {
    return 'gc()';
  }
}

export class FaultCommand extends Step {
  constructor(readonly fault: Fault) {
    super();
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    const { fault } = this;
    switch (fault.target) {
      case 'service':
        world.service.faults = { ...world.service.faults, ...fault.faults };
        break;
      case 'store':
        world.store.failWrites(fault.fault);
        break;
      case 'disk-full':
        world.store.capacity = world.store.usedBytes() + 1024;
        break;
      case 'log':
        world.logDisk.failAppends(fault.fault);
        break;
      case 'hook':
        world.loader.inject(fault.fault);
        break;
      case 'host-data':
        world.hostData.stallWrite(fault.stallWrite);
        break;
    }
  }
  toString() {
    const { target, ...rest } = this.fault;
    return `fault(${target}, ${JSON.stringify(Object.values(rest)[0] ?? {})})`;
  }
}

export class HealCommand extends Step {
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.heal();
    world.store.capacity = 256 * 1024 * 1024;
  }
  toString() {
    return 'heal()';
  }
}

export class AdvanceClockCommand extends Step {
  constructor(readonly ms: number) {
    super();
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.clock.increment(this.ms);
  }
  toString() {
    return `advanceClock(${this.ms})`;
  }
}

/** The process dies and a new one starts over what survived. */
export class CrashCommand extends Step {
  constructor(readonly dropUnsynced: boolean) {
    super();
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.crash({ dropUnsynced: this.dropUnsynced });
    void world.boot();
  }
  toString() {
    return this.dropUnsynced ? 'crashAndRestart(power cut)' : 'crashAndRestart()';
  }
}

const hookFault = fc
  .record({
    hook: fc.constantFrom('migrate' as const, 'load' as const, 'healthCheck' as const, 'unload' as const),
    effect: fc.constantFrom('throw' as const, 'stall' as const, 'unhealthy' as const),
    repeat: fc.constantFrom('once' as const, 'from-then-on' as const),
  })
  .map<Fault>(({ hook, effect, repeat }) => ({ target: 'hook', fault: { hook, effect: effect === 'unhealthy' && hook !== 'healthCheck' ? 'throw' : effect, repeat } }));

const faultArbitrary: fc.Arbitrary<Fault> = fc.oneof(
  { arbitrary: hookFault, weight: 4 },
  fc.constantFrom<Fault>(
    { target: 'service', faults: { offline: true } },
    { target: 'service', faults: { corrupt: true } },
    { target: 'service', faults: { stall: true } },
    { target: 'disk-full' },
  ),
  fc.integer({ min: 0, max: 120 }).map<Fault>((s) => ({ target: 'service', faults: { unavailable: s === 0 ? {} : { retryAfterMs: s * 1000 } } })),
  fc.integer({ min: 0, max: 5000 }).map<Fault>((n) => ({ target: 'service', faults: { truncateAfter: n } })),
  fc.record({ code: fc.constantFrom('ENOSPC' as const, 'EIO' as const), after: fc.nat(6), mode: fc.constantFrom('once' as const, 'from-then-on' as const) }).map<Fault>((fault) => ({ target: 'store', fault })),
  fc.record({ after: fc.nat(12), mode: fc.constantFrom('lost' as const, 'unsynced' as const) }).map<Fault>((fault) => ({ target: 'log', fault })),
  fc.nat(4).map<Fault>((n) => ({ target: 'host-data', stallWrite: n })),
);

/** Crash points, weighted toward where an update spends its hook and fsync boundaries. */
const crashPointArbitrary: fc.Arbitrary<CrashPoint> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .oneof({ weight: 3, arbitrary: fc.constant('migrate' as const) }, { weight: 3, arbitrary: fc.constant('load' as const) }, { weight: 2, arbitrary: fc.constant('healthCheck' as const) }, { weight: 1, arbitrary: fc.constant('unload' as const) })
      .map<CrashPoint>((hook) => ({ at: 'hook', hook })),
  },
  // fast-check draws small integers more often: the first writes of a migrate come first.
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 7 }).map<CrashPoint>((write) => ({ at: 'host-data', write })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        call: fc.oneof({ weight: 3, arbitrary: fc.constantFrom<StoreBoundary>('promote', 'writePointer') }, { weight: 1, arbitrary: fc.constantFrom<StoreBoundary>('discardStaging', 'collectGarbage', 'removeVersion') }),
        after: fc.integer({ min: 0, max: 1 }),
      })
      .map<CrashPoint>(({ call, after }) => ({ at: 'store', call, after })),
  },
);

/** What may go wrong in a step: nothing, a crash at a boundary, or a failing hook; `clean` weighs the first. */
function interruptionArbitrary(clean: number): fc.Arbitrary<Interruption | null> {
  return fc.oneof(
    { weight: clean, arbitrary: fc.constant(null) },
    { weight: 4, arbitrary: fc.record({ crash: crashPointArbitrary, powerCut: fc.boolean() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        fail: fc.constantFrom<HookName>('migrate', 'load', 'healthCheck'),
        effect: fc.constantFrom('throw' as const, 'unhealthy' as const),
      }),
    },
  );
}

/**
 * Every command, weighted toward whole updates and rollbacks cut off at hook and fsync boundaries (the
 * schedules that reach a host's bugs in few steps), with single calls, faults, clock jumps and crashes
 * for everything in between.
 * @example
 * fc.commands(simulationCommands(), { maxCommands: 30 })
 */
export function simulationCommands(): Array<fc.Arbitrary<SimulationCommand>> {
  const { update, rollback, check, crash, publish } = commandArbitraries();
  const weighted: Array<fc.WeightedArbitrary<SimulationCommand>> = [
    { weight: 8, arbitrary: update },
    { weight: 3, arbitrary: rollback },
    { weight: 2, arbitrary: check },
    { weight: 1, arbitrary: publish },
    { weight: 1, arbitrary: fc.constant(new ChangeCommand()) },
    { weight: 1, arbitrary: fc.constant(new ApproveCommand()) },
    { weight: 1, arbitrary: fc.constant(new CancelCommand()) },
    { weight: 1, arbitrary: fc.constant(new ConfirmCommand()) },
    { weight: 1, arbitrary: fc.constant(new GcCommand()) },
    { weight: 2, arbitrary: faultArbitrary.map((fault) => new FaultCommand(fault)) },
    { weight: 1, arbitrary: fc.constant(new HealCommand()) },
    { weight: 1, arbitrary: clockJump },
    { weight: 2, arbitrary: crash },
  ];
  return [fc.oneof(...weighted)];
}

/**
 * The commands of a host's life story only: updates and rollbacks (each maybe cut off at a boundary),
 * restarts, checks, confirmations and time passing. Several updates and rollbacks in a row is what a
 * bug in a host's data handling needs; the full set spends most steps elsewhere.
 * @example
 * fc.commands(storyCommands(), { size: 'small' })
 */
export function storyCommands(): Array<fc.Arbitrary<SimulationCommand>> {
  const { update, rollback, check, crash } = commandArbitraries();
  return [
    fc.oneof(
      { weight: 6, arbitrary: update },
      { weight: 3, arbitrary: rollback },
      { weight: 1, arbitrary: check },
      { weight: 1, arbitrary: fc.constant(new ConfirmCommand()) },
      { weight: 1, arbitrary: clockJump },
      // A bug in what a hook leaves behind often shows only when the next process loads it.
      { weight: 2, arbitrary: crash },
    ),
  ];
}

/**
 * Clean updates to run before a schedule: a host mostly meets trouble with some history behind it
 * (a version to roll back to, data a migrate converted before), and a schedule need not spend its first
 * steps building it. Up to three; shrinks toward none.
 * @example
 * fc.tuple(installedHistory(), fc.commands(storyCommands())).map(([history, rest]) => [...history, ...rest])
 */
export function installedHistory(): fc.Arbitrary<SimulationCommand[]> {
  const { bump, sizes } = commandArbitraries();
  return fc.array(
    fc.tuple(bump, sizes).map(([b, s]) => new UpdateCommand(b, s, null)),
    { minLength: 0, maxLength: 3 },
  );
}

const clockJump = fc.constantFrom(1_000, 30_000, 120_000, 700_000).map((ms) => new AdvanceClockCommand(ms));

function commandArbitraries() {
  const bump = fc.constantFrom('major' as const, 'minor' as const, 'patch' as const);
  // File sizes matter little to a host's bug; shrinking them costs a run per try, so they keep their value.
  const sizes = fc.noShrink(fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 3 }));
  const publish = fc.tuple(bump, sizes, fc.boolean()).map(([b, s, share]) => new PublishCommand(b, s, share));
  const update = fc.tuple(bump, sizes, interruptionArbitrary(4)).map(([b, s, interruption]) => new UpdateCommand(b, s, interruption));
  // A rollback is mostly the step before the one that breaks: more often clean.
  const rollback = fc.tuple(fc.boolean(), interruptionArbitrary(10)).map(([oldest, interruption]) => new RollbackCommand(oldest, interruption));
  const check = fc.integer({ min: 1, max: 3 }).map((times) => new CheckCommand(times));
  const crash = fc.boolean().map((dropUnsynced) => new CrashCommand(dropUnsynced));
  return { bump, sizes, publish, update, rollback, check, crash };
}
