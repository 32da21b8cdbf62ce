/**
 * Named one-shot timers on the host's clock (xstate's SimulatedClock in tests). On Node they never keep
 * the process alive: an updater in the background must not stop a host from exiting.
 */
export interface TimerSource {
  setTimeout(fn: (...args: any[]) => void, timeout: number): any;
  clearTimeout(id: any): void;
}

/** The system's timers, unref'd on Node. */
export const systemTimers: TimerSource = {
  setTimeout: (fn: () => void, ms: number) => {
    const id = setTimeout(fn, ms);
    (id as { unref?: () => void }).unref?.(); // browsers have no unref
    return id;
  },
  clearTimeout: (id: unknown) => clearTimeout(id as NodeJS.Timeout),
};

export class BackgroundTimers {
  private readonly ids = new Map<string, unknown>();

  constructor(private readonly source: TimerSource = systemTimers) {}

  /** (Re)arms the timer called `name`. */
  set(name: string, delay: number, fire: () => void): void {
    this.clear(name);
    const id = this.source.setTimeout(() => {
      this.ids.delete(name);
      fire();
    }, delay);
    this.ids.set(name, id);
  }

  clear(name: string): void {
    if (this.ids.has(name)) this.source.clearTimeout(this.ids.get(name));
    this.ids.delete(name);
  }

  clearAll(): void {
    for (const name of [...this.ids.keys()]) this.clear(name);
  }
}
