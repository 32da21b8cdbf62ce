/**
 * Writes a stream of chunks to a file at a position through a few reused 1 MiB slots.
 *
 * Why slots: a chunk is copied out as soon as it arrives, so the transport can reuse its buffer (the
 * direct one) or let it die young (node:http's); keeping chunks until they were written got them
 * promoted to the old generation, where they piled up. One full slot is one positional write: few,
 * large writes.
 * Why background syncs: the kernel would otherwise keep the whole file dirty in memory and write it all
 * during the final fsync; an fdatasync every 16 MiB, one at a time off the main thread, overlaps that
 * writeback with the transfer, so the final fsync only has the tail left.
 */
import type { FileHandle } from 'node:fs/promises';

const MIB = 1024 * 1024;

export interface SlotWriterOptions {
  /** Bytes per slot, and per write. Default 1 MiB. */
  slotBytes?: number;
  /** Slots in the pool: at most this many bytes (times slotBytes) wait for the disk. Default 4. */
  slots?: number;
  /** Bytes written between background fdatasyncs; 0 turns them off. Default 16 MiB (measured a little faster than 64). */
  syncEveryBytes?: number;
  /** Called after each write with the bytes it put on the file. */
  onWritten?: (bytes: number) => void;
  /** Called once a slot is free again after push() returned false. */
  onDrain?: () => void;
  /** Called once, with the first write or sync error; nothing more is written after it. */
  onError?: (error: unknown) => void;
}

export class SlotWriter {
  readonly #file: FileHandle;
  readonly #slotBytes: number;
  readonly #maxSlots: number;
  readonly #syncEveryBytes: number;
  readonly #onWritten: ((bytes: number) => void) | undefined;
  readonly #onDrain: (() => void) | undefined;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #free: Buffer[] = [];
  #allocated = 0;
  #current: Buffer | undefined;
  #fill = 0;
  #position: number;
  #writes: Promise<void> = Promise.resolve();
  #error: unknown;
  #waitingForSlot = false;
  #sinceSync = 0;
  #sync: Promise<void> | undefined;

  constructor(file: FileHandle, position: number, options: SlotWriterOptions = {}) {
    this.#file = file;
    this.#position = position;
    this.#slotBytes = options.slotBytes ?? MIB;
    this.#maxSlots = Math.max(2, options.slots ?? 4);
    this.#syncEveryBytes = options.syncEveryBytes ?? 16 * MIB;
    this.#onWritten = options.onWritten;
    this.#onDrain = options.onDrain;
    this.#onError = options.onError;
  }

  /** The first write or sync error, if any: once set, nothing more is written. */
  get error(): unknown {
    return this.#error;
  }

  /**
   * Copies the chunk in; the caller may reuse it at once. Returns false when every slot is taken: stop
   * pushing until onDrain. A push past that still works (a spare slot is made), so a chunk already in
   * flight is never lost.
   */
  push(chunk: Uint8Array): boolean {
    let offset = 0;
    while (offset < chunk.length) {
      const slot = (this.#current ??= this.#takeSlot());
      const copied = Math.min(chunk.length - offset, slot.length - this.#fill);
      slot.set(chunk.subarray(offset, offset + copied), this.#fill);
      this.#fill += copied;
      offset += copied;
      if (this.#fill === slot.length) this.#flush();
    }
    const full = this.#free.length === 0 && this.#allocated >= this.#maxSlots;
    if (full) this.#waitingForSlot = true;
    return !full;
  }

  /** Writes what is left in the current slot and resolves once every write is done (or rejects). */
  async end(): Promise<void> {
    this.#flush();
    await this.#writes;
    await this.#sync;
    if (this.#error !== undefined) throw this.#error;
  }

  #takeSlot(): Buffer {
    const slot = this.#free.pop();
    if (slot !== undefined) return slot;
    this.#allocated++;
    return Buffer.allocUnsafeSlow(this.#slotBytes);
  }

  /** Queues the current slot's bytes for one positional write, after the ones before it. */
  #flush(): void {
    const slot = this.#current;
    const length = this.#fill;
    if (slot === undefined || length === 0) return;
    const position = this.#position;
    this.#current = undefined;
    this.#fill = 0;
    this.#position += length;
    this.#writes = this.#writes.then(async () => {
      try {
        if (this.#error === undefined) await writeFully(this.#file, slot, length, position);
      } catch (error) {
        this.#fail(error);
      }
      this.#release(slot);
      if (this.#error !== undefined) return;
      this.#onWritten?.(length);
      this.#syncInBackground(length);
    });
  }

  #fail(error: unknown): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#onError?.(error);
  }

  #release(slot: Buffer): void {
    // A spare made by an over-push is dropped, so the pool shrinks back to its size.
    if (this.#allocated > this.#maxSlots) this.#allocated--;
    else this.#free.push(slot);
    if (this.#waitingForSlot) {
      this.#waitingForSlot = false;
      this.#onDrain?.();
    }
  }

  #syncInBackground(written: number): void {
    if (this.#syncEveryBytes === 0) return;
    this.#sinceSync += written;
    if (this.#sync !== undefined || this.#sinceSync < this.#syncEveryBytes) return;
    this.#sinceSync = 0;
    this.#sync = this.#file.datasync().then(
      () => (this.#sync = undefined),
      (error: unknown) => {
        this.#sync = undefined;
        this.#fail(error);
      },
    );
  }
}

/** One positional write that finishes short writes, so the slot is either fully on disk or an error. */
async function writeFully(file: FileHandle, slot: Buffer, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await file.write(slot, done, length - done, position + done);
    done += bytesWritten;
  }
}
