/**
 * The whole deterministic world an updater runs in under simulation: the in-memory update service, the
 * memory store and log with their durable images, the host's hooks and data, and xstate's SimulatedClock.
 * It starts updaters on it, crashes them, and waits until nothing can move without outside help.
 */
import { seededRandom } from '../../machines/seededRandom.js';
import { SimulatedClock } from 'xstate';
import { createUpdater, type ModelUpdater, type UpdateResult, type UpdaterOptions } from '../core/createUpdater.js';
import type { ModelLoader } from '../core/modelRef.js';
import { wrapStoreCalls, type ModelStore } from '../core/ports/modelStore.js';
import { statePath } from '../core/statePath.js';
import { MemoryLogDisk } from './memoryEventLog.js';
import { MemoryModelStore } from './memoryModelStore.js';
import { MemoryUpdateService } from './memoryUpdateService.js';
import { memoryTransport } from './memoryTransport.js';
import type { StagingArea } from '../core/ports/stagingArea.js';
import type { Transport } from '../core/ports/transport.js';
import { SimulatedHostData } from './simulatedHostData.js';
import { SimulatedLoader, type SimulatedHandle } from './simulatedLoader.js';
import { SimulatedProcess } from './simulatedProcess.js';

/** What the host's hooks can use in a simulation. */
export interface SimulatedHost {
  /** The host's own data, durable across crashes; its writes are crash points. */
  data: SimulatedHostData;
  /** The files of an installed version, as the host would read them from `model.path`. */
  readFiles(version: string): Map<string, Uint8Array> | null;
}

/** The host's hooks, or a factory called at every (re)start of the simulated process. */
export type SimulatedHooks<Handle = unknown> = ModelLoader<Handle> | ((host: SimulatedHost) => ModelLoader<Handle>);

export interface SimulatedWorldOptions<Handle = unknown> {
  hooks?: SimulatedHooks<Handle>;
  /** Updater options the world does not set itself (approval, retention, probation, retry, ...). */
  updater?: Omit<UpdaterOptions<Handle>, 'loader' | 'manifestUrl' | 'clock' | 'now' | 'trustedKeys' | 'allowUnsigned'>;
  /** Disk size in bytes. Default 256 MiB. */
  capacity?: number;
  /** Stall timeout of a transfer, on the simulated clock. Default 30 000 ms. */
  stallTimeoutMs?: number;
  /**
   * Sees every asynchronous result of the store, the service and the hooks before the updater does, and
   * may hold it back: `(label, result) => scheduler.schedule(result, label)` with fast-check's
   * `fc.scheduler()` lets a test choose the order in which they arrive.
   */
  interpose?: <T>(label: string, result: Promise<T>) => Promise<T>;
}

/** Anything the updater reported as an error: an 'error' event, a rejected call, a result's error. */
export interface ReportedError {
  source: string;
  error: unknown;
}

const EPOCH = Date.parse('2026-01-01T00:00:00.000Z');

/**
 * @example
 * const world = new SimulatedWorld({ hooks: { load: (m) => m.version } })
 * world.service.publish('1.0.0', { 'model.bin': 'weights' })
 * await world.boot(); world.call('check', (u) => u.check()); await world.settle()
 * world.updater?.active?.version // '1.0.0'
 */
export class SimulatedWorld<Handle = unknown> {
  readonly clock = new SimulatedClock();
  readonly process = new SimulatedProcess();
  readonly service = new MemoryUpdateService(this.process, this.clock);
  readonly store: MemoryModelStore;
  readonly logDisk = new MemoryLogDisk();
  readonly hostData = new SimulatedHostData(this.process);
  readonly loader = new SimulatedLoader(this.process);
  /** The updater of the current process; null between a crash and the next boot. */
  updater: ModelUpdater<SimulatedHandle<Handle>> | null = null;
  /** Set while the current process's start() has not finished; the error when it failed. */
  startState: 'starting' | 'started' | { failed: unknown } = 'starting';
  readonly errors: ReportedError[] = [];
  /** Results of finished calls in this process, newest last. */
  readonly results: Array<{ call: string; result: UpdateResult }> = [];
  private inFlight = 0;

  constructor(private readonly options: SimulatedWorldOptions<Handle> = {}) {
    this.clock.set(EPOCH);
    this.store = new MemoryModelStore(options.capacity === undefined ? {} : { capacity: options.capacity });
  }

  /** Whether results go through `options.interpose`; off while a test sets the scene. */
  interposing = true;
  private readonly interpose = <T>(label: string, result: Promise<T>): Promise<T> => {
    if (!this.interposing || !this.options.interpose) return result;
    // A result held back until the run ends must not count as an unhandled rejection.
    result.catch(() => undefined);
    return this.options.interpose(label, result);
  };

  private storeStall: { call: string; after: number } | null = null;

  /**
   * Stalls the `after`-th call (0: the next) of a store method just after it returned, its write and
   * fsync done: a crash there is a crash between the store's durable write and the updater acting on it.
   * @example
   * world.stallStoreCall('writePointer'); world.call('check', (u) => u.check()); await world.settle()
   */
  stallStoreCall(call: 'promote' | 'writePointer' | 'discardStaging' | 'collectGarbage' | 'removeVersion', after = 0): void {
    this.storeStall = { call, after };
  }

  /** Takes back a stallStoreCall() that has not fired. */
  clearStoreStall(): void {
    this.storeStall = null;
  }

  private storeBoundary<T>(label: string, result: Promise<T>): Promise<T> {
    const stall = this.storeStall;
    if (!stall || label !== `store ${stall.call}`) return result;
    if (stall.after > 0) {
      this.storeStall = { ...stall, after: stall.after - 1 };
      return result;
    }
    this.storeStall = null;
    return result.then(async (value) => (await this.process.stall(), value));
  }

  /** Starts a new process: a new updater over whatever the store and log hold now. */
  async boot(): Promise<void> {
    const generation = this.process.generation;
    const host: SimulatedHost = { data: this.hostData, readFiles: (version) => this.store.readVersion(version) };
    const given = typeof this.options.hooks === 'function' ? this.options.hooks(host) : (this.options.hooks ?? {});
    const hooks = interposed(given, this.interpose);
    const updater = createUpdater<SimulatedHandle<Handle>>(
      {
        checkpointEvery: 40,
        ...this.options.updater,
        policy: { checkOnStart: false, ...this.options.updater?.policy },
        manifestUrl: this.service.manifestUrl,
        allowUnsigned: true,
        loader: this.loader.wrap(hooks),
        clock: this.clock,
        now: () => this.clock.now(),
        random: seededRandom(this.process.generation + 1),
        ...(this.options.stallTimeoutMs === undefined ? {} : { download: { ...this.options.updater?.download, stallTimeoutMs: this.options.stallTimeoutMs } }),
        // The manifest's deadline runs on the simulated clock: long enough never to fire during a run's clock jumps.
        manifestTimeoutMs: 3_600_000,
      },
      {
        store: fenced(this.store, this.process, generation, (label, result) => this.interpose(label, this.storeBoundary(label, result))),
        staging: fenced<StagingArea>(this.store.staging, this.process, generation, (_label, result) => result),
        transport: fenced<Transport>(memoryTransport(this.service), this.process, generation, (_label, result) => result),
        openLog: (now) => this.logDisk.open(now, this.options.updater?.log),
        fetch: (input, init) => this.process.fence(generation, this.interpose('fetch manifest', this.service.fetch(input, init))),
      },
    );
    this.updater = updater;
    this.startState = 'starting';
    updater.on('error', (error) => this.process.alive(generation) && this.errors.push({ source: 'error event', error }));
    this.inFlight++;
    try {
      await this.process.fence(generation, updater.start());
      this.startState = 'started';
    } catch (error) {
      this.startState = { failed: error };
      this.errors.push({ source: 'start()', error });
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Calls the updater without waiting for it to settle (a stalled step would keep it waiting); the
   * outcome is recorded when it arrives. A call while no updater runs is skipped.
   */
  call(name: string, action: (updater: ModelUpdater<SimulatedHandle<Handle>>) => Promise<UpdateResult> | void): void {
    const updater = this.updater;
    if (!updater || this.startState === 'starting') return;
    const generation = this.process.generation;
    let pending: Promise<UpdateResult> | void;
    try {
      pending = action(updater);
    } catch (error) {
      this.errors.push({ source: `${name}()`, error });
      return;
    }
    if (!pending) return;
    this.inFlight++;
    void this.process
      .fence(generation, pending)
      .then(
        (result) => {
          this.results.push({ call: name, result });
          if (result.error) this.errors.push({ source: `${name}() result`, error: result.error });
        },
        (error: unknown) => this.errors.push({ source: `${name}()`, error }),
      )
      .finally(() => this.inFlight--);
  }

  /** The process dies. `dropUnsynced`: a power cut, losing what was written but not synced. */
  crash({ dropUnsynced }: { dropUnsynced: boolean }): void {
    this.process.crash();
    this.updater?.stop();
    this.updater = null;
    this.inFlight = 0;
    this.storeStall = null;
    this.store.crash({ dropUnsynced });
    this.logDisk.crash({ dropUnsynced });
    this.loader.restarted();
  }

  /** Every fault ends and every stalled operation goes on. */
  heal(): void {
    this.storeStall = null;
    this.service.faults = {};
    this.store.heal();
    this.logDisk.heal();
    this.loader.heal();
    this.hostData.heal();
    this.process.heal();
  }

  /** Whether the updater is stopped for good (its log could not be written) until a restart. */
  get halted(): boolean {
    if (!this.updater) return true;
    try {
      this.updater.getSnapshot();
      return false;
    } catch {
      return true;
    }
  }

  /** The dotted state of the running updater, or why there is none. */
  state(): string {
    if (!this.updater) return 'no process';
    if (this.halted) return 'halted';
    return statePath(this.updater.getSnapshot());
  }

  /**
   * Waits until nothing moves: no new record, request, store write or hook call over several turns of
   * the event loop. What is left waits for the clock, a stall to be healed, or the host.
   */
  async settle(): Promise<void> {
    let quiet = 0;
    let last = '';
    for (let turn = 0; turn < 5_000 && quiet < 4; turn++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const now = [
        this.logDisk.records.length,
        this.state(),
        this.service.requests.length,
        this.store.usedBytes(),
        this.loader.calls.length,
        this.process.stalls,
        this.inFlight,
        this.startState === 'starting' ? 's' : 'r',
      ].join('|');
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
  }
}

/** The host's hooks with their results passed through `interpose`. */
function interposed<Handle>(hooks: ModelLoader<Handle>, interpose: <T>(label: string, result: Promise<T>) => Promise<T>): ModelLoader<Handle> {
  const wrapped: ModelLoader<Handle> = {};
  for (const name of ['migrate', 'load', 'healthCheck', 'unload'] as const) {
    const hook = hooks[name] as ((...args: unknown[]) => unknown) | undefined;
    (wrapped as Record<string, unknown>)[name] = (...args: unknown[]) => interpose(`hook ${name}`, Promise.resolve().then(() => hook?.apply(hooks, args)));
  }
  return wrapped;
}

/** The store as one process sees it: after that process dies, its calls never return. */
function fenced<T extends object = ModelStore>(store: T, process: SimulatedProcess, generation: number, interpose: <R>(label: string, result: Promise<R>) => Promise<R>): T {
  // hasContent is a read-only estimate (checkDiskSpace); its order decides nothing.
  return wrapStoreCalls<T>(store, (name, result) => process.fence(generation, name === 'hasContent' ? result : interpose(`store ${name}`, result)));
}
