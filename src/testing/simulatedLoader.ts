/**
 * The host's hooks as the simulator runs them: wrapped so that migrate, load, healthCheck and unload can
 * be made to throw, report unhealthy, or stall (a crash point), and so that what is loaded is known.
 */
import type { ModelLoader, ModelRef } from '../core/modelRef.js';
import type { SimulatedProcess } from './simulatedProcess.js';

export type HookName = 'migrate' | 'load' | 'healthCheck' | 'unload';

/** A fault in one of the host's hooks, for one version (or any), once or from then on. */
export interface HookFault {
  hook: HookName;
  effect: 'throw' | 'stall' | 'unhealthy';
  version?: string;
  repeat: 'once' | 'from-then-on';
}

/** A handle the wrapper hands the library: the host's own handle and the version it belongs to. */
export interface SimulatedHandle<Handle = unknown> {
  version: string;
  host: Handle | undefined;
}

/**
 * @example
 * const loader = new SimulatedLoader(process); loader.inject({ hook: 'load', effect: 'throw', repeat: 'once' })
 * createUpdater({ loader: loader.wrap(hostHooks), ... }, platform)
 */
export class SimulatedLoader {
  private faults: HookFault[] = [];
  /** Versions loaded in the current process (a crash empties it). */
  readonly loaded = new Set<string>();
  /** Versions whose load failed by injection since the last start: not loaded, and rightly so. */
  readonly injectedLoadFailures = new Set<string>();
  /** Every hook call, `hook(version)`, for reports. */
  readonly calls: string[] = [];

  constructor(private readonly process: SimulatedProcess) {}

  inject(fault: HookFault): void {
    this.faults.push(fault);
  }

  heal(): void {
    this.faults = [];
  }

  /** Takes back one injected fault that has not fired yet. */
  remove(fault: HookFault): void {
    this.faults = this.faults.filter((f) => f !== fault);
  }

  /** The process died: nothing is loaded any more. */
  restarted(): void {
    this.loaded.clear();
    this.injectedLoadFailures.clear();
  }

  /** Whether a fault is armed for a hook (any version). */
  armed(hook: HookName): boolean {
    return this.faults.some((fault) => fault.hook === hook);
  }

  private take(hook: HookName, version: string): HookFault | undefined {
    const fault = this.faults.find((f) => f.hook === hook && (f.version === undefined || f.version === version));
    if (fault?.repeat === 'once') this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  /** Runs a hook with the faults armed for it; returns what the host's hook returned. */
  private async run<T>(hook: HookName, version: string, signal: AbortSignal | undefined, body: () => T | Promise<T>): Promise<T | 'unhealthy'> {
    this.calls.push(`${hook}(${version})`);
    const fault = this.take(hook, version);
    if (fault?.effect === 'stall') await this.process.stall(signal);
    if (fault?.effect === 'throw') {
      if (hook === 'load') this.injectedLoadFailures.add(version);
      throw new Error(`simulated ${hook} failure for ${version}`);
    }
    if (fault?.effect === 'unhealthy') return 'unhealthy';
    return body();
  }

  /** The hooks the updater gets: the host's, behind the injected faults, in the current process. */
  wrap<Handle>(hooks: ModelLoader<Handle>): ModelLoader<SimulatedHandle<Handle>> {
    const generation = this.process.generation;
    const alive = () => this.process.alive(generation);
    return {
      migrate: (context) => this.process.fence(generation, this.run('migrate', context.to.version, context.signal, () => hooks.migrate?.(context))),
      load: async (model: ModelRef) => {
        const host = await this.process.fence(generation, this.run('load', model.version, undefined, () => hooks.load?.(model)));
        if (alive()) this.loaded.add(model.version);
        return { version: model.version, host: host === 'unhealthy' ? undefined : (host as Handle | undefined) };
      },
      healthCheck: async (model, handle) => {
        const healthy = await this.process.fence(generation, this.run('healthCheck', model.version, undefined, () => hooks.healthCheck?.(model, handle.host as Handle)));
        return healthy === 'unhealthy' ? false : healthy;
      },
      unload: async (model, handle) => {
        if (alive()) this.loaded.delete(model.version);
        await this.process.fence(generation, this.run('unload', model.version, undefined, () => hooks.unload?.(model, handle.host as Handle)));
      },
    };
  }
}
