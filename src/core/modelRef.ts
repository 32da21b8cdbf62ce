/**
 * What the host's hooks receive about a model version, and the registry of versions the host has loaded.
 */
import type { InstalledVersion } from '../../machines/types.js';
import { UpdateError } from './errors.js';
import { hookDeadlines, withDeadline, type HookDeadlines } from './hookDeadline.js';

export interface ModelRef {
  version: string;
  /** Absolute folder holding the version's files under their manifest paths (the app's own folder for the bundled model). */
  path: string;
  files: InstalledVersion['files'];
  /** True for the model shipped in the app's bundle (option `bundled`), loaded in place and read-only. */
  bundled?: true;
  /**
   * The version's `metadata` as its publisher signed it (model format, golden inputs with expected
   * outputs, ...); absent when it has none. A copy: changing it changes nothing in the updater.
   */
  metadata?: Record<string, unknown>;
}

/**
 * The host's hooks. All optional; each may be async. Throwing (or `healthCheck` returning false) fails
 * the step, and the update rolls back to the version that was active.
 */
export interface ModelLoader<Handle = unknown> {
  /** Converts host data (caches, user adaptations) for the new version before it is loaded. */
  migrate?(context: { from: ModelRef | null; to: ModelRef; signal: AbortSignal; metadata?: Record<string, unknown> }): unknown;
  /** Loads a version's files; the returned handle is passed to healthCheck and unload. */
  load?(model: ModelRef): Handle | Promise<Handle>;
  /**
   * Runs the loaded model on a known input; false or a throw marks the version unhealthy. `model.metadata`
   * holds what the publisher measured (e.g. golden inputs and expected outputs) to compare with.
   */
  healthCheck?(model: ModelRef, handle: Handle): boolean | void | Promise<boolean | void>;
  /** Releases a version that is no longer used. */
  unload?(model: ModelRef, handle: Handle): unknown;
}

/** The versions the host has loaded, with their handles. Handles never enter the statechart. */
export class LoadedModels<Handle = unknown> {
  private readonly handles = new Map<string, Handle>();

  constructor(
    private readonly loader: ModelLoader<Handle>,
    private readonly pathOf: (version: string) => string,
    /** Each hook's deadline (HOOK_TIMEOUT when it passes), on the updater's clock. */
    readonly deadlines: HookDeadlines = hookDeadlines(undefined),
  ) {}

  ref(installed: InstalledVersion): ModelRef {
    const metadata = installed.metadata === undefined ? {} : { metadata: structuredClone(installed.metadata) };
    if (installed.bundledPath !== undefined) return { version: installed.version, path: installed.bundledPath, files: installed.files, bundled: true, ...metadata };
    return { version: installed.version, path: this.pathOf(installed.version), files: installed.files, ...metadata };
  }

  handle(version: string): Handle | undefined {
    return this.handles.get(version);
  }

  isLoaded(version: string): boolean {
    return this.handles.has(version);
  }

  /** Loads a version unless it is loaded already (steps may run twice after a restart). */
  async load(installed: InstalledVersion): Promise<void> {
    if (this.handles.has(installed.version) || !this.loader.load) return;
    const load = this.loader.load.bind(this.loader);
    const ref = this.ref(installed);
    let handle: Handle;
    try {
      // A load that returns after its deadline is released at once: nothing uses it.
      handle = await withDeadline(this.deadlines, 'load', installed.version, () => load(ref), (late) => void Promise.resolve(this.loader.unload?.(ref, late)).catch(() => undefined));
    } catch (error) {
      if ((error as UpdateError)?.code === 'HOOK_TIMEOUT') throw error;
      throw new UpdateError('LOAD_FAILED', `The host's load hook failed for version ${installed.version}: ${(error as Error)?.message ?? error}.`, {
        cause: error,
      });
    }
    this.handles.set(installed.version, handle);
  }

  async healthCheck(installed: InstalledVersion): Promise<void> {
    if (!this.loader.healthCheck) return;
    let healthy: boolean | void;
    try {
      const check = this.loader.healthCheck.bind(this.loader);
      healthy = await withDeadline(this.deadlines, 'healthCheck', installed.version, () => check(this.ref(installed), this.handles.get(installed.version) as Handle));
    } catch (error) {
      if ((error as UpdateError)?.code === 'HOOK_TIMEOUT') throw error;
      throw new UpdateError('HEALTH_CHECK_FAILED', `The health check of version ${installed.version} threw: ${(error as Error)?.message ?? error}.`, {
        cause: error,
      });
    }
    if (healthy === false) {
      throw new UpdateError('HEALTH_CHECK_FAILED', `The health check of version ${installed.version} reported it unhealthy.`);
    }
  }

  /**
   * Unloads a version if it is loaded. Best effort: a failing unload must not block a rollback. An unload
   * past its deadline is reported (HOOK_TIMEOUT) only when `timeoutFails` is set, as after a switch.
   */
  async unload(installed: InstalledVersion, { timeoutFails = false }: { timeoutFails?: boolean } = {}): Promise<void> {
    if (!this.handles.has(installed.version)) return;
    const handle = this.handles.get(installed.version) as Handle;
    this.handles.delete(installed.version);
    if (!this.loader.unload) return;
    const unload = this.loader.unload.bind(this.loader);
    try {
      await withDeadline(this.deadlines, 'unload', installed.version, () => unload(this.ref(installed), handle));
    } catch (error) {
      // The version is out of use either way; the host's own logging sees its error.
      if (timeoutFails && (error as UpdateError)?.code === 'HOOK_TIMEOUT') throw error;
    }
  }
}
