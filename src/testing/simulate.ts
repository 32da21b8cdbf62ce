/**
 * simulate(): random failure schedules (faults, crashes, clock jumps, racing calls) against a host's
 * hooks, checked by every invariant after every step; the first failure comes back shrunk, with its seed,
 * its replay path, its command list and the log of the failing run.
 */
import fc from 'fast-check';
import { formatRecord } from '../core/log/describe.js';
import { initialModel, installedHistory, simulationCommands, storyCommands, type SimulationCommand } from './commands.js';
import { correctHooks } from './defaultHooks.js';
import { SimulatedWorld, type SimulatedHooks, type SimulatedWorldOptions } from './simulatedWorld.js';

export interface SimulateOptions<Handle = unknown> {
  /** The host's hooks (migrate, load, healthCheck, unload), or a factory given the simulated host. Default: a correct host. */
  hooks?: SimulatedHooks<Handle>;
  /** Schedules to try. Default 100 (the search stops at the first failure). */
  runs?: number;
  /** Seed for a reproducible run (the report of a failure names it). */
  seed?: number;
  /** Replay one failure exactly: the `path` and `replayPath` of its report, with its seed. */
  path?: string;
  replayPath?: string;
  /** Most commands in one schedule. Default 30. */
  maxCommands?: number;
  /** Updater options held fixed (otherwise drawn at random per schedule: approval, retention, probation, retries). */
  updater?: SimulatedWorldOptions<Handle>['updater'];
}

/** A schedule that broke an invariant, shrunk to a small one. */
export interface Counterexample {
  /** What broke. */
  error: string;
  seed: number;
  /** fast-check's replay path: pass it back with the seed (and replayPath) to run only this schedule. */
  path: string;
  /** fast-check's replay path of the command list (how it was shrunk). */
  replayPath: string;
  /** The commands of the failing schedule, in order. */
  commands: string[];
  /** The failing run's event log, one line a record. */
  log: string[];
  /** The state the updater was in when it failed. */
  state: string;
  /** The host data at the end (what migrate wrote). */
  hostData: Record<string, unknown>;
}

export interface SimulationReport {
  ok: boolean;
  runs: number;
  seed: number;
  counterexample: Counterexample | null;
}

/** What one schedule runs with, when the host does not fix it. */
const settingsArbitrary = fc.record({
  approval: fc.constantFrom('auto' as const, 'ask' as const),
  keepVersions: fc.integer({ min: 2, max: 4 }),
  maxRetainedBytes: fc.constantFrom(Number.MAX_SAFE_INTEGER, 8_000, 20_000),
  maxFailedStarts: fc.integer({ min: 1, max: 2 }),
  confirmAfterLoads: fc.integer({ min: 1, max: 3 }),
  maxDownloadAttempts: fc.integer({ min: 1, max: 3 }),
  maxCheckAttempts: fc.integer({ min: 1, max: 3 }),
});

interface FailedRun {
  error: string;
  commands: string[];
  log: string[];
  state: string;
  hostData: Record<string, unknown>;
}

/**
 * The fast-check property behind simulate(), for suites that drive fast-check themselves. `onFailure`
 * receives each failing run (the last one is the shrunk counterexample).
 * @example
 * await fc.assert(simulationProperty({ hooks }), { numRuns: 100 })
 */
export function simulationProperty<Handle>(options: Omit<SimulateOptions<Handle>, 'runs' | 'seed' | 'path'> = {}, onFailure?: (run: FailedRun) => void) {
  // Short schedules first (fast-check's 'small' size: up to 10 commands, the shortest most often): they
  // run fast and shrink fast. Half are stories of updates and rollbacks, half use every command; each
  // starts after up to three clean updates, so a host's history is there to break.
  const constraints = { maxCommands: options.maxCommands ?? 30, size: 'small' as const, ...(options.replayPath ? { replayPath: options.replayPath } : {}) };
  const schedule = fc.oneof(fc.commands(storyCommands(), constraints), fc.commands(simulationCommands(), constraints));
  return fc.asyncProperty(settingsArbitrary, installedHistory(), schedule, async (settings, history, commands) => {
    const world = new SimulatedWorld<Handle>({
      hooks: options.hooks ?? (correctHooks as unknown as SimulatedHooks<Handle>),
      updater: {
        keepVersions: settings.keepVersions,
        maxRetainedBytes: settings.maxRetainedBytes,
        policy: { approval: settings.approval },
        probation: { maxFailedStarts: settings.maxFailedStarts, confirmAfterLoads: settings.confirmAfterLoads },
        retry: { maxDownloadAttempts: settings.maxDownloadAttempts, maxCheckAttempts: settings.maxCheckAttempts, baseDelayMs: 1_000, maxDelayMs: 60_000 },
        ...options.updater,
      },
    });
    const executed: string[] = [];
    try {
      void world.boot();
      await world.settle();
      const model = initialModel();
      const traced = [...history, ...commands].map((command) => tracing(command, executed));
      await fc.asyncModelRun(() => ({ model, real: world }), traced);
    } catch (error) {
      const run: FailedRun = {
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        commands: [`settings ${JSON.stringify(settings)}`, ...executed],
        log: world.logDisk.records.map(formatRecord),
        state: world.state(),
        hostData: world.hostData.snapshot(),
      };
      onFailure?.(run);
      throw new Error(`${run.error}\n${describeRun(run)}`);
    } finally {
      world.crash({ dropUnsynced: false });
    }
  });
}

/** Records each command as it runs, so a failure names the ones that ran up to it. */
function tracing(command: SimulationCommand, executed: string[]): SimulationCommand {
  return {
    check: (model) => command.check(model),
    run: async (model, real) => {
      executed.push(command.toString());
      await command.run(model, real);
    },
    toString: () => command.toString(),
  };
}

function describeRun(run: FailedRun): string {
  return [
    `state at failure: ${run.state}`,
    'commands:',
    ...run.commands.map((c, i) => `  ${i === 0 ? '' : `${i}. `}${c}`),
    'log of the failing run:',
    ...run.log.map((line) => `  ${line}`),
    `host data: ${JSON.stringify(run.hostData)}`,
  ].join('\n');
}

/**
 * Runs random failure schedules against the host's hooks and reports the first that breaks an invariant.
 * @example
 * const report = await simulate({ hooks: { migrate, load, healthCheck }, runs: 200, seed: 42 })
 * if (!report.ok) console.log(report.counterexample)
 */
export async function simulate<Handle>(options: SimulateOptions<Handle> = {}): Promise<SimulationReport> {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  let last: FailedRun | undefined;
  const details = await fc.check(
    simulationProperty(options, (run) => (last = run)),
    { numRuns: options.runs ?? 100, seed, ...(options.path ? { path: options.path } : {}) },
  );
  if (!details.failed || !last) return { ok: true, runs: details.numRuns, seed, counterexample: null };
  return {
    ok: false,
    runs: details.numRuns,
    seed,
    counterexample: {
      error: last.error,
      seed,
      path: details.counterexamplePath ?? '',
      replayPath: /replayPath="([^"]*)"/.exec(String(details.counterexample?.[2]))?.[1] ?? '',
      commands: last.commands,
      log: last.log,
      state: last.state,
      hostData: last.hostData,
    },
  };
}

/** The error assertSimulation throws: its message holds the whole counterexample. */
export class SimulationFailure extends Error {
  override readonly name = 'SimulationFailure';
  constructor(readonly counterexample: Counterexample) {
    super(
      [
        counterexample.error,
        `replay with: simulate({ ..., seed: ${counterexample.seed}, path: ${JSON.stringify(counterexample.path)}, replayPath: ${JSON.stringify(counterexample.replayPath)} })`,
        describeRun(counterexample),
      ].join('\n'),
    );
  }
}

/**
 * simulate() for test runners: throws a SimulationFailure with the seed, the path, the commands and the
 * log of the failing run.
 * @example
 * it('survives random failures', () => assertSimulation({ hooks, runs: 100 }), 60_000)
 */
export async function assertSimulation<Handle>(options: SimulateOptions<Handle> = {}): Promise<SimulationReport> {
  const report = await simulate(options);
  if (report.counterexample) throw new SimulationFailure(report.counterexample);
  return report;
}
