/**
 * The host's own data (caches, user adaptations) that its migrate hook converts: durable across
 * crashes like a file the host writes, and each write or delete a point where the simulator can stop
 * the process.
 */
import type { SimulatedProcess } from './simulatedProcess.js';

/**
 * @example
 * const migrate = async ({ to }) => { for (const key of data.keys()) await data.set(key, convert(data.get(key), to.version)) }
 */
export class SimulatedHostData {
  private readonly entries = new Map<string, unknown>();
  private writes = 0;
  private stallAt: number | null = null;

  constructor(private readonly process: SimulatedProcess) {}

  get<T = unknown>(key: string): T | undefined {
    return structuredClone(this.entries.get(key)) as T | undefined;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Writes one entry durably. The write the simulator chose stalls: a crash then cuts the host off there. */
  async set(key: string, value: unknown): Promise<void> {
    await this.write(() => this.entries.set(key, structuredClone(value)));
  }

  /** Deletes one entry durably; like a write, a point where the simulator can stop the process. */
  async delete(key: string): Promise<void> {
    await this.write(() => this.entries.delete(key));
  }

  private async write(change: () => void): Promise<void> {
    const generation = this.process.generation;
    this.writes++;
    if (this.stallAt !== null && this.writes >= this.stallAt) {
      this.stallAt = null;
      await this.process.stall();
    }
    if (!this.process.alive(generation)) return new Promise(() => undefined); // the process is dead
    change();
  }

  /** Stalls the `after`-th write or delete from now (0: the next one) until heal() or a crash. */
  stallWrite(after: number): void {
    this.stallAt = this.writes + 1 + after;
  }

  /** Writes and deletes so far: how far a host's migrate got. */
  get writeCount(): number {
    return this.writes;
  }

  heal(): void {
    this.stallAt = null;
  }

  /** A copy of every entry, for reports. */
  snapshot(): Record<string, unknown> {
    return Object.fromEntries([...this.entries].map(([k, v]) => [k, structuredClone(v)]));
  }
}
