/**
 * The host process of a simulation: what a crash ends. Stalled operations wait here until `heal()`;
 * a crash abandons them, and anything the dead process still had in flight never returns.
 */
import { UpdateError } from '../core/errors.js';

/** A wait that never ends: what a killed process's pending work amounts to. */
const never = <T>() => new Promise<T>(() => undefined);

export class SimulatedProcess {
  /** Bumped by every crash; work started by an older generation is fenced off. */
  generation = 0;
  private stalled = new Set<() => void>();

  /** Operations waiting for heal(). */
  get stalls(): number {
    return this.stalled.size;
  }

  /**
   * Waits until heal(); rejects with CANCELLED when `signal` aborts; never settles after a crash.
   * @example
   * await process.stall(signal) // a server that stopped sending
   */
  stall(signal?: AbortSignal): Promise<void> {
    const generation = this.generation;
    return new Promise<void>((resolve, reject) => {
      const release = () => {
        this.stalled.delete(release);
        if (generation === this.generation) resolve();
      };
      this.stalled.add(release);
      signal?.addEventListener(
        'abort',
        () => {
          this.stalled.delete(release);
          if (generation === this.generation) reject(new UpdateError('CANCELLED', 'The stalled operation was aborted.'));
        },
        { once: true },
      );
    });
  }

  /** Releases every stalled operation. */
  heal(): void {
    for (const release of [...this.stalled]) release();
  }

  /** The process dies: its stalled operations are abandoned and its later results are lost. */
  crash(): void {
    this.stalled.clear();
    this.generation++;
  }

  /**
   * Passes a result through while the process that started it lives.
   * @example
   * const bytes = await process.fence(process.generation, store.read())
   */
  fence<T>(generation: number, work: Promise<T>): Promise<T> {
    return work.then(
      (value) => (generation === this.generation ? value : never<T>()),
      (error: unknown) => (generation === this.generation ? Promise.reject(error) : never<T>()),
    );
  }

  /** Whether work started by `generation` may still act. */
  alive(generation: number): boolean {
    return generation === this.generation;
  }
}
