/**
 * The checkpoints of a download written by ranges: every {@link CHECKPOINT_BYTES} written, the file is
 * made durable; the spans written before that sync are then listed in the resume record, at once when
 * the last record is {@link RECORD_INTERVAL_MS} old, else as soon as it is. One sync or record at a time;
 * a failed checkpoint only costs the resume.
 */
import type { ResumeRecord } from '../ports/stagingArea.js';
import type { Timers } from './transferGuard.js';

const MIB = 1024 * 1024;
/** Written spans are made durable this often: the final sync then has only the tail left. */
export const CHECKPOINT_BYTES = 16 * MIB;
/**
 * The durable spans are listed in the resume record at most this often (and at least this soon after
 * a sync). A record is a file written and renamed: one every 16 MiB made a fast download about 5 %
 * slower than one stream (bench:parallel); a crash costs at most this long of transfer.
 */
export const RECORD_INTERVAL_MS = 1000;

/**
 * @example
 * const checkpoints = new Checkpoints(() => file.flush(), (record) => staging.writeRecord(staged, record), () => currentRecord(), timers)
 * checkpoints.written(bytes) // after each write; await checkpoints.idle() before closing
 */
export class Checkpoints {
  #since = 0;
  #syncing = false;
  #running: Promise<void> | undefined;
  #recordedAt = Number.NEGATIVE_INFINITY;
  /** The newest durable spans not recorded yet, and the timer that records them. */
  #pending: ResumeRecord | undefined;
  #timer: unknown;

  constructor(
    private readonly sync: () => Promise<void>,
    private readonly write: (record: ResumeRecord) => Promise<void>,
    private readonly record: () => ResumeRecord,
    private readonly timers: Timers,
  ) {}

  written(bytes: number): void {
    this.#since += bytes;
    this.#checkpoint();
  }

  /** Waits for the sync or record under way; a record still waiting for its time is dropped (the caller writes its own). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
    this.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
  }

  #checkpoint(): void {
    if (this.#since < CHECKPOINT_BYTES || this.#syncing) return;
    this.#since = 0;
    this.#syncing = true;
    const snapshot = this.record();
    this.#run(async () => {
      try {
        await this.sync();
      } finally {
        this.#syncing = false;
      }
      this.#pending = snapshot;
      const wait = this.#recordedAt + RECORD_INTERVAL_MS - this.timers.now();
      if (wait <= 0) await this.#writePending();
      else this.#timer ??= this.timers.setTimeout(() => {
        this.#timer = undefined;
        this.#run(() => this.#writePending());
      }, wait);
      // Bytes written during the sync: the next one now, not at the next write (there may be none: a stalled connection).
      this.#checkpoint();
    });
  }

  #run(step: () => Promise<void>): void {
    const previous = this.#running ?? Promise.resolve();
    const running: Promise<void> = previous
      .then(step)
      .catch(() => undefined)
      .finally(() => {
        if (this.#running === running) this.#running = undefined;
      });
    this.#running = running;
  }

  async #writePending(): Promise<void> {
    const snapshot = this.#pending;
    if (snapshot === undefined) return;
    this.#pending = undefined;
    this.#recordedAt = this.timers.now();
    await this.write(snapshot);
  }
}
