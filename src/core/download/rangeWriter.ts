/**
 * Writes one connection's bytes into a RandomAccessFile from a position on, through a few reused
 * slots: the one write path of every download (a plain stream, each range of a parallel or
 * differential one).
 *
 * Why slots: a chunk is copied out as soon as it arrives, so the transport can reuse its buffer (the
 * direct one) or let it die young (node:http's); keeping chunks until they were written got them
 * promoted to the old generation, where they piled up. One full slot is one positional write: few,
 * large writes. Writes of one connection go in order, so `written` only grows.
 * Why background syncs (`syncEveryBytes`): the kernel would otherwise keep the whole file dirty in
 * memory and write it all during the final fsync; a flush every 16 MiB, one at a time, overlaps that
 * writeback with the transfer, so the final fsync only has the tail left. The ranged paths sync at
 * their checkpoints instead (checkpoints.ts).
 */
import type { RandomAccessFile } from '../ports/stagingArea.js';

const MIB = 1024 * 1024;

export interface RangeWriterOptions {
  /** Bytes per slot, and per write. Default 1 MiB. */
  slotBytes?: number;
  /** Slots in the pool before push() says stop. Default 3. */
  slots?: number;
  /** A slot is free again after push() returned false. */
  onDrain?: () => void;
  /** The first write error; nothing more is written after it. */
  onError?: (error: unknown) => void;
  /** Bytes up to this position are written. */
  onWritten?: (writtenEnd: number) => void;
  /** Free slots shared with the other writers of a download: reused, not reallocated per request. */
  pool?: Uint8Array[];
  /** Bytes written between background flushes (the file's `flush`); 0 or absent: none. */
  syncEveryBytes?: number;
}

/**
 * @example
 * const writer = new RangeWriter(file, 4096, { onDrain: () => response.resume() })
 * if (!writer.push(bytes)) pause(); ... await writer.end(); writer.written // position after the last byte written
 */
export class RangeWriter {
  readonly #file: RandomAccessFile;
  readonly #options: RangeWriterOptions;
  readonly #slotBytes: number;
  readonly #maxSlots: number;
  readonly #free: Uint8Array[];
  /** Slots this writer holds (filling or being written). */
  #held = 0;
  #current: Uint8Array | undefined;
  #fill = 0;
  /** Where the next pushed byte goes. */
  #position: number;
  #written: number;
  #writes: Promise<void> = Promise.resolve();
  #error: unknown;
  #full = false;
  /** The pool is this writer's own: slots made for a push past `slots` are dropped when released. */
  readonly #ownPool: boolean;
  #sinceSync = 0;
  #sync: Promise<void> | undefined;

  constructor(file: RandomAccessFile, position: number, options: RangeWriterOptions = {}) {
    this.#file = file;
    this.#position = this.#written = position;
    this.#options = options;
    this.#slotBytes = options.slotBytes ?? MIB;
    this.#maxSlots = Math.max(2, options.slots ?? 3);
    this.#free = options.pool ?? [];
    this.#ownPool = options.pool === undefined;
  }

  /** The position after the last byte written. */
  get written(): number {
    return this.#written;
  }

  get error(): unknown {
    return this.#error;
  }

  /** Copies the bytes in (the caller may reuse them at once). False: wait for onDrain (a push past that still works). */
  push(bytes: Uint8Array): boolean {
    if (this.#error !== undefined) return false;
    let offset = 0;
    while (offset < bytes.length) {
      const slot = (this.#current ??= this.#takeSlot());
      const copied = Math.min(bytes.length - offset, slot.length - this.#fill);
      slot.set(bytes.subarray(offset, offset + copied), this.#fill);
      this.#fill += copied;
      offset += copied;
      if (this.#fill === slot.length) this.#flush();
    }
    this.#full = this.#held >= this.#maxSlots;
    return !this.#full;
  }

  /** Writes what is left; resolves once every write settled (rejects with the first error). */
  async end(): Promise<void> {
    this.#flush();
    await this.#writes;
    await this.#sync;
    if (this.#error !== undefined) throw this.#error;
  }

  #takeSlot(): Uint8Array {
    this.#held++;
    const slot = this.#free.pop();
    return slot !== undefined && slot.byteLength === this.#slotBytes ? slot : new Uint8Array(this.#slotBytes);
  }

  #flush(): void {
    const slot = this.#current;
    if (slot === undefined) return;
    if (this.#fill === 0) {
      this.#current = undefined;
      this.#release(slot);
      return;
    }
    const length = this.#fill;
    const position = this.#position;
    this.#position += length;
    this.#current = undefined;
    this.#fill = 0;
    this.#writes = this.#writes.then(async () => {
      try {
        if (this.#error !== undefined) return;
        await this.#file.write(position, slot.subarray(0, length));
        this.#written = position + length;
        this.#options.onWritten?.(this.#written);
        this.#syncInBackground(length);
      } catch (error) {
        this.#fail(error);
        return;
      } finally {
        this.#release(slot);
      }
      if (this.#full && this.#held < this.#maxSlots) {
        this.#full = false;
        this.#options.onDrain?.();
      }
    });
  }

  #release(slot: Uint8Array): void {
    this.#held--;
    // A spare made by a push past `slots` is dropped, so an own pool shrinks back to its size.
    if (this.#ownPool && this.#free.length + this.#held >= this.#maxSlots) return;
    this.#free.push(slot);
  }

  #fail(error: unknown): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#options.onError?.(error);
  }

  #syncInBackground(written: number): void {
    const every = this.#options.syncEveryBytes ?? 0;
    if (every === 0 || !this.#file.flush) return;
    this.#sinceSync += written;
    if (this.#sync !== undefined || this.#sinceSync < every) return;
    this.#sinceSync = 0;
    this.#sync = this.#file.flush().then(
      () => (this.#sync = undefined),
      (error: unknown) => {
        this.#sync = undefined;
        this.#fail(error);
      },
    );
  }
}
