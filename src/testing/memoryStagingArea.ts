/**
 * The simulator's StagingArea: staged files on the memory disk of MemoryModelStore, with its two images.
 * Bytes written land in the written image only (a crash that drops unsynced writes loses them); a
 * finished file is synced, as the file staging area fsyncs it. Writes count for the store's injected
 * faults ('writeStaged') and for its capacity.
 */
import { createHash } from 'node:crypto';
import type { OpenOptions, RandomAccessFile, ResumeRecord, Sha256, StagedFile, StagedWriter, StagingArea } from '../core/ports/stagingArea.js';
import { storageError } from '../core/storageError.js';
import type { DiskImage } from './memoryModelStore.js';
import { errno } from './memoryModelStore.js';

/** What the staging area needs of the store's disk. */
export interface MemoryDisk {
  written(): DiskImage;
  synced(): DiskImage;
  /** Counts a write and throws an injected fault. */
  write(name: string): void;
  /** Bytes left on the disk. */
  free(): number;
}

function nodeSha256(): Sha256 {
  const hash = createHash('sha256');
  return { update: (bytes) => void hash.update(bytes), digest: () => hash.digest('hex') };
}

/**
 * @example
 * const store = new MemoryModelStore(); await store.staging.size({ version: '1.0.0', path: 'model.bin' })
 */
export class MemoryStagingArea implements StagingArea {
  constructor(private readonly disk: MemoryDisk) {}

  private bytes(file: StagedFile): Uint8Array | undefined {
    return this.disk.written().staging.get(file.version)?.get(file.path);
  }

  async size(file: StagedFile): Promise<number> {
    return this.bytes(file)?.byteLength ?? 0;
  }

  async readRecord(file: StagedFile): Promise<ResumeRecord | undefined> {
    const record = this.disk.written().records.get(file.version)?.get(file.path);
    return record === undefined ? undefined : copyRecord(record);
  }

  async writeRecord(file: StagedFile, record: ResumeRecord): Promise<void> {
    const records = this.disk.written().records;
    const files = records.get(file.version) ?? new Map<string, ResumeRecord>();
    records.set(file.version, files.set(file.path, copyRecord(record)));
  }

  async hashPrefix(file: StagedFile, length: number): Promise<{ hash: Sha256; length: number }> {
    const hash = nodeSha256();
    const prefix = (this.bytes(file) ?? new Uint8Array()).subarray(0, length);
    hash.update(prefix);
    return { hash, length: prefix.byteLength };
  }

  async createHash(): Promise<Sha256> {
    return nodeSha256();
  }

  async open(file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    try {
      this.disk.write('writeStaged');
    } catch (error) {
      throw storageError(error, `write ${file.path}`);
    }
    const written = this.disk.written().staging;
    const files = written.get(file.version) ?? new Map<string, Uint8Array>();
    written.set(file.version, files);
    // A fresh buffer (never one an image still shows), holding the prefix the write starts after.
    let buffer = new Uint8Array(Math.max(64 * 1024, options.position * 2));
    buffer.set((files.get(file.path) ?? new Uint8Array()).subarray(0, options.position));
    let length = Math.min(options.position, files.get(file.path)?.byteLength ?? 0);
    files.set(file.path, buffer.subarray(0, length));
    let failure: unknown;
    return {
      write: (bytes) => {
        if (failure !== undefined) return false;
        if (bytes.byteLength > this.disk.free()) {
          failure = errno('ENOSPC', `write ${file.path}`);
          options.onError(failure);
          return false;
        }
        if (length + bytes.byteLength > buffer.byteLength) {
          const grown = new Uint8Array(Math.max(buffer.byteLength * 2, length + bytes.byteLength));
          grown.set(buffer.subarray(0, length));
          buffer = grown;
        }
        buffer.set(bytes, length);
        length += bytes.byteLength;
        // Written, not synced: a crash may lose it. (The images' maps may have been replaced by a crash.)
        this.disk.written().staging.get(file.version)?.set(file.path, buffer.subarray(0, length));
        return true;
      },
      finish: async ({ sync }) => {
        if (failure !== undefined) throw storageError(failure, `write ${file.path}`);
        if (!sync) return;
        const synced = this.disk.synced().staging;
        const durable = synced.get(file.version) ?? new Map<string, Uint8Array>();
        synced.set(file.version, durable.set(file.path, buffer.slice(0, length)));
      },
    };
  }

  /**
   * The staged file for writes at any offsets: bytes land in the written image (a crash before a sync
   * loses them); each write counts as a 'writeStaged' for the injected faults and the capacity.
   */
  async openRandomAccess(file: StagedFile, size: number): Promise<RandomAccessFile> {
    const put = (bytes: Uint8Array) => {
      const written = this.disk.written().staging;
      written.set(file.version, (written.get(file.version) ?? new Map<string, Uint8Array>()).set(file.path, bytes));
    };
    // A fresh buffer (never one an image still shows), grown by doubling; the image shows its used part.
    const kept = (this.bytes(file) ?? new Uint8Array()).subarray(0, size);
    let buffer = new Uint8Array(Math.max(64 * 1024, kept.byteLength));
    buffer.set(kept);
    let length = kept.byteLength;
    put(buffer.subarray(0, length));
    let closed = false;
    return {
      write: async (position, bytes) => {
        if (closed) throw storageError(new Error('the file is closed'), `write ${file.path}`);
        try {
          this.disk.write('writeStaged');
        } catch (error) {
          throw storageError(error, `write ${file.path}`);
        }
        const end = Math.max(length, position + bytes.byteLength);
        if (end - length > this.disk.free()) throw storageError(errno('ENOSPC', `write ${file.path}`), `write ${file.path}`);
        if (end > buffer.byteLength) {
          const grown = new Uint8Array(Math.max(buffer.byteLength * 2, end));
          grown.set(buffer.subarray(0, length));
          buffer = grown;
        }
        buffer.set(bytes, position);
        length = end;
        put(buffer.subarray(0, length));
      },
      read: async (position, length) => (this.bytes(file) ?? new Uint8Array()).slice(position, position + length),
      close: async ({ sync }) => {
        if (closed) return;
        closed = true;
        if (sync) await this.sync(file);
      },
    };
  }

  async sync(file: StagedFile): Promise<void> {
    const bytes = this.bytes(file);
    if (!bytes) return;
    const synced = this.disk.synced().staging;
    const durable = synced.get(file.version) ?? new Map<string, Uint8Array>();
    synced.set(file.version, durable.set(file.path, bytes.slice()));
  }

  async remove(file: StagedFile): Promise<void> {
    this.disk.written().staging.get(file.version)?.delete(file.path);
    await this.removeRecord(file);
  }

  async removeRecord(file: StagedFile): Promise<void> {
    this.disk.written().records.get(file.version)?.delete(file.path);
  }
}

function copyRecord(record: ResumeRecord): ResumeRecord {
  return record.completed === undefined ? { ...record } : { ...record, completed: record.completed.map(([start, end]) => [start, end]) };
}
