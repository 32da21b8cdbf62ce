/**
 * The checkpoints of a download written at any offsets (parallel ranges, a differential assembly): what
 * was written is made durable once {@link CHECKPOINT_BYTES} have accumulated, or a
 * {@link CHECKPOINT_INTERVAL_MS} after the last sync on a slow link; what a sync made durable is then
 * listed in the resume record, at once when the last record is that interval old, else as soon as it
 * is, even if nothing more arrives. So a crash costs at most about a second of transfer (or 16 MiB on
 * a fast link), and a fast download writes few records. One sync or record at a time; a failed
 * checkpoint only costs the resume.
 */
import type { ResumeRecord } from '../ports/stagingArea.js';
import type { Timers } from './transferGuard.js';

const MIB = 1024 * 1024;
/** Bytes written that are made durable at once: the final sync then has only the tail left. */
export const CHECKPOINT_BYTES = 16 * MIB;
/**
 * Fewer bytes are made durable this long after the last sync, and the durable spans are recorded at
 * most this often. A record is a file written and renamed: one every 16 MiB made a fast download about
 * 5 % slower than one stream (bench:parallel).
 */
export const CHECKPOINT_INTERVAL_MS = 1000;

/**
 * @example
 * const checkpoints = new Checkpoints(() => file.flush(), (record) => staging.writeRecord(staged, record), () => currentRecord(), timers)
 * checkpoints.written(bytes) // after each write; await checkpoints.idle() before closing
 */
export class Checkpoints {
  #since = 0;
  #syncing = false;
  #syncedAt: number;
  #syncTimer: unknown;
  #running: Promise<void> | undefined;
  #recordedAt = Number.NEGATIVE_INFINITY;
  /** The newest durable spans not recorded yet, and the timer that records them. */
  #pending: ResumeRecord | undefined;
  #recordTimer: unknown;

  /**
   * @param sync makes everything written so far durable
   * @param write writes a resume record
   * @param record the record of what is written now; undefined when nothing may be recorded (no strong validator)
   */
  constructor(
    private readonly sync: () => Promise<void>,
    private readonly write: (record: ResumeRecord) => Promise<void>,
    private readonly record: () => ResumeRecord | undefined,
    private readonly timers: Timers,
  ) {
    this.#syncedAt = timers.now();
  }

  written(bytes: number): void {
    this.#since += bytes;
    this.#checkpoint();
  }

  /** Waits for the sync or record under way; what still waits for its time is dropped (the caller syncs and records at the end). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
    this.timers.clearTimeout(this.#syncTimer);
    this.timers.clearTimeout(this.#recordTimer);
    this.#syncTimer = this.#recordTimer = undefined;
    this.#pending = undefined;
  }

  #checkpoint(): void {
    if (this.#since === 0 || this.#syncing) return;
    const wait = this.#syncedAt + CHECKPOINT_INTERVAL_MS - this.timers.now();
    if (this.#since < CHECKPOINT_BYTES && wait > 0) {
      // A slow link: these bytes are made durable when the interval is over, whether more come or not.
      this.#syncTimer ??= this.timers.setTimeout(() => {
        this.#syncTimer = undefined;
        this.#checkpoint();
      }, wait);
      return;
    }
    this.timers.clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    this.#since = 0;
    this.#syncing = true;
    this.#syncedAt = this.timers.now();
    const snapshot = this.record();
    this.#run(async () => {
      try {
        await this.sync();
      } finally {
        this.#syncing = false;
      }
      if (snapshot !== undefined) this.#recordSoon(snapshot);
      // Bytes written during the sync: the next one now or when due, not at the next write (there may be none).
      this.#checkpoint();
    });
  }

  #recordSoon(snapshot: ResumeRecord): void {
    this.#pending = snapshot;
    const wait = this.#recordedAt + CHECKPOINT_INTERVAL_MS - this.timers.now();
    if (wait <= 0) {
      this.#run(() => this.#writePending());
      return;
    }
    this.#recordTimer ??= this.timers.setTimeout(() => {
      this.#recordTimer = undefined;
      this.#run(() => this.#writePending());
    }, wait);
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
