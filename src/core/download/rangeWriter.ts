/**
 * Writes one connection's bytes into a RandomAccessFile from a position on, through a few reused
 * slots: a chunk is copied out as it arrives (the transport reuses its buffer), and one full slot is
 * one positional write. Writes of one connection go in order, so `written` only grows.
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

  constructor(file: RandomAccessFile, position: number, options: RangeWriterOptions = {}) {
    this.#file = file;
    this.#position = this.#written = position;
    this.#options = options;
    this.#slotBytes = options.slotBytes ?? MIB;
    this.#maxSlots = Math.max(2, options.slots ?? 3);
    this.#free = options.pool ?? [];
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
      } catch (error) {
        this.#error = error;
        this.#options.onError?.(error);
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
    this.#free.push(slot);
  }
}
