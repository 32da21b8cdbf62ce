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
import type { HookFault } from './simulatedLoader.js';
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
    const latest = model.published.reduce<string | null>((max, v) => (max === null || semver.gt(v, max) ? v : max), null);
    const version = latest === null ? '1.0.0' : semver.inc(latest, this.bump)!;
    const build = ++model.builds;
    const files: Record<string, Uint8Array> = {};
    this.sizes.forEach((size, index) => (files[`part${index}.bin`] = content(build, index, size)));
    const shared = latest === null ? undefined : world.service.content(latest, 'part0.bin');
    if (this.shareFirst && shared) files['part0.bin'] = shared;
    world.service.publish(version, files);
    model.published.push(version);
  }
  toString() {
    return `publish(${this.bump}, [${this.sizes.join(', ')}]${this.shareFirst ? ', shared' : ''})`;
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
  constructor(readonly oldest: boolean) {
    super();
  }
  protected act(_model: SimulationModel, world: SimulatedWorld<any>) {
    world.call('rollback', (u) => {
      const retained = world.halted ? [] : u.getSnapshot().context.retained;
      return this.oldest && retained.length ? u.rollback(retained.at(-1)!.version) : u.rollback();
    });
  }
  toString() {
    return this.oldest ? 'rollback(oldest)' : 'rollback()';
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

/**
 * Every command, weighted so that runs publish, check and break things in useful proportions.
 * @example
 * fc.commands(simulationCommands(), { maxCommands: 30 })
 */
export function simulationCommands(): Array<fc.Arbitrary<SimulationCommand>> {
  const publish = fc
    .tuple(fc.constantFrom('major' as const, 'minor' as const, 'patch' as const), fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([bump, sizes, share]) => new PublishCommand(bump, sizes, share));
  const check = fc.integer({ min: 1, max: 3 }).map((times) => new CheckCommand(times));
  const crash = fc.boolean().map((dropUnsynced) => new CrashCommand(dropUnsynced));
  return [
    publish,
    publish,
    fc.constant(new ChangeCommand()),
    check,
    check,
    check,
    fc.constant(new ApproveCommand()),
    fc.constant(new CancelCommand()),
    fc.constant(new ConfirmCommand()),
    fc.boolean().map((oldest) => new RollbackCommand(oldest)),
    fc.constant(new GcCommand()),
    faultArbitrary.map((fault) => new FaultCommand(fault)),
    faultArbitrary.map((fault) => new FaultCommand(fault)),
    fc.constant(new HealCommand()),
    fc.constantFrom(1_000, 30_000, 120_000, 700_000).map((ms) => new AdvanceClockCommand(ms)),
    crash,
    crash,
  ];
}
