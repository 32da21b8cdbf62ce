/**
 * The Node StagingArea: files under the model folder.
 *
 *   <dir>/staging/<version>/<path>            the bytes of a download in progress: payload only
 *   <dir>/resume/<version>/<sha256(path)>     its resume record (JSON), outside the payload's namespace,
 *                                             so no manifest file name can collide with it or outgrow
 *                                             NAME_MAX because of it
 *
 * node:crypto cannot save a hash's state, so a resumed file's prefix is hashed again from disk.
 * Writes go through a few reused 1 MiB slots, one positional write each (core/download/rangeWriter.ts). Nothing is
 * read or written through a symbolic link planted in the folder.
 */
import { createHash as nodeHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UpdateError } from '../core/errors.js';
import type { OpenOptions, RandomAccessFile, ResumeRecord, Sha256, StagedFile, StagedWriter, StagingArea } from '../core/ports/stagingArea.js';
import { storageError } from '../core/storageError.js';
import { assertNoSymlinks, mkdirNoFollow, NO_FOLLOW, WRITE_NO_FOLLOW } from './noSymlinks.js';
import { RangeWriter } from '../core/download/rangeWriter.js';

const MIB = 1024 * 1024;

/** A node:crypto SHA-256 as the port's hasher (no saved state). */
export function nodeSha256(): Sha256 {
  const hash = nodeHash('sha256');
  return { update: (bytes) => void hash.update(bytes), digest: () => hash.digest('hex') };
}

/**
 * @example
 * const staging = new FileStagingArea('/var/lib/app/models')
 * await staging.size({ version: '1.2.0', path: 'model.bin' }) // bytes kept from an earlier attempt
 */
export class FileStagingArea implements StagingArea {
  readonly location: string;

  constructor(location: string) {
    this.location = resolve(location);
  }

  /** Where the staged bytes of a file are. */
  pathOf(file: StagedFile): string {
    return join(this.location, 'staging', file.version, file.path);
  }

  /** Where the resume record of a file is. */
  recordPathOf(file: StagedFile): string {
    return join(this.location, 'resume', file.version, nodeHash('sha256').update(file.path).digest('hex'));
  }

  async size(file: StagedFile): Promise<number> {
    const path = this.pathOf(file);
    try {
      await assertNoSymlinks(this.location, path);
      // lstat: a symbolic link in place of the staging file is refused, not measured through.
      const stats = await lstat(path);
      if (!stats.isFile()) {
        throw new UpdateError('STORAGE_FAILED', `${path} is not a regular file (a symbolic link or a folder); remove it, model-updater never creates one there.`);
      }
      return stats.size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw storageError(error, `read ${path}`);
    }
  }

  async readRecord(file: StagedFile): Promise<ResumeRecord | undefined> {
    const path = this.recordPathOf(file);
    // Not through a link planted at resume/ or below: the record must come from the model folder.
    await assertNoSymlinks(this.location, path, 'read a resume record in').catch((error: unknown) => Promise.reject(storageError(error, `read ${path}`)));
    let text: string;
    try {
      text = await readFile(path, { encoding: 'utf8', flag: fsConstants.O_RDONLY | NO_FOLLOW });
    } catch {
      return undefined;
    }
    try {
      const value = JSON.parse(text) as Partial<ResumeRecord>;
      if (typeof value.expectedSize !== 'number') return undefined;
      return {
        expectedSize: value.expectedSize,
        ...(typeof value.validator === 'string' ? { validator: value.validator } : {}),
        ...(isSpanList(value.completed) ? { completed: value.completed } : {}),
        ...(typeof value.plan === 'string' ? { plan: value.plan } : {}),
      };
    } catch {
      // A torn record only costs the validator: the resume goes on without one.
      return undefined;
    }
  }

  async writeRecord(file: StagedFile, record: ResumeRecord): Promise<void> {
    const path = this.recordPathOf(file);
    await storage(async () => {
      await mkdirNoFollow(this.location, dirname(path));
      await assertNoSymlinks(this.location, path);
      // Written aside and renamed: a torn record of a file written by ranges would make its holes look like a prefix.
      const aside = `${path}.new`;
      await assertNoSymlinks(this.location, aside);
      await writeFile(aside, JSON.stringify(record), { flag: WRITE_NO_FOLLOW });
      await rename(aside, path);
    }, `write ${path}`);
  }

  /**
   * Opens the staged file for positional writes and reads (created when missing, cut to `size` when
   * longer), through no symbolic link planted in the folder.
   * @example
   * const file = await staging.openRandomAccess({ version: '1.2.0', path: 'model.bin' }, 734_003_200)
   * await file.write(4096, bytes); await file.close({ sync: true })
   */
  async openRandomAccess(file: StagedFile, size: number): Promise<RandomAccessFile> {
    const path = this.pathOf(file);
    const handle = await storage(async () => {
      await mkdirNoFollow(this.location, dirname(path));
      await assertNoSymlinks(this.location, path);
      const opened = await open(path, fsConstants.O_RDWR | fsConstants.O_CREAT | NO_FOLLOW);
      try {
        if ((await opened.stat()).size > size) await opened.truncate(size);
      } catch (error) {
        await opened.close().catch(() => undefined);
        throw error;
      }
      return opened;
    }, `open ${path}`);
    return randomAccessOver(handle, path);
  }

  async hashPrefix(file: StagedFile, length: number, signal: AbortSignal): Promise<{ hash: Sha256; length: number }> {
    const path = this.pathOf(file);
    const hash = nodeSha256();
    let read = 0;
    await storage(async () => {
      const handle = await open(path, fsConstants.O_RDONLY | NO_FOLLOW);
      try {
        const buffer = Buffer.allocUnsafe(Math.min(MIB, Math.max(1, length)));
        while (read < length && !signal.aborted) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - read), read);
          if (bytesRead === 0) break;
          hash.update(buffer.subarray(0, bytesRead));
          read += bytesRead;
        }
      } finally {
        await handle.close();
      }
    }, `read ${path}`);
    return { hash, length: read };
  }

  async createHash(): Promise<Sha256> {
    return nodeSha256();
  }

  async open(file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    const path = this.pathOf(file);
    const { position } = options;
    // A symlink planted in the folder must not carry the write elsewhere: folders made one by one, the file opened O_NOFOLLOW.
    const handle = await storage(async () => {
      await mkdirNoFollow(this.location, dirname(path));
      await assertNoSymlinks(this.location, path);
      return open(path, position > 0 ? fsConstants.O_RDWR | NO_FOLLOW : WRITE_NO_FOLLOW);
    }, `open ${path}`);
    try {
      // Positional writes below; a stale tail past the prefix must not survive.
      if (position > 0) await handle.truncate(position);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw storageError(error, `truncate ${path}`);
    }
    const target = randomAccessOver(handle, path);
    const writer = new RangeWriter(target, position, { slots: 4, syncEveryBytes: 16 * MIB, onDrain: options.onDrain, onError: options.onError });
    return {
      write: (bytes) => writer.push(bytes),
      async finish({ sync }) {
        try {
          await writer.end();
        } catch (error) {
          await target.close({ sync: false }).catch(() => undefined);
          throw storageError(error, `write ${path}`);
        }
        await target.close({ sync });
      },
    };
  }

  async sync(file: StagedFile): Promise<void> {
    const path = this.pathOf(file);
    await storage(async () => {
      // r+ because Windows only flushes handles opened for writing.
      const handle = await open(path, fsConstants.O_RDWR | NO_FOLLOW);
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }, `flush ${path} to disk`);
  }

  async remove(file: StagedFile): Promise<void> {
    const path = this.pathOf(file);
    await storage(async () => {
      await assertNoSymlinks(this.location, path);
      await rm(path, { force: true });
    }, `remove ${path}`);
    await this.removeRecord(file);
  }

  async removeRecord(file: StagedFile): Promise<void> {
    await rm(this.recordPathOf(file), { force: true }).catch(() => undefined);
  }
}

async function storage<T>(action: () => Promise<T>, what: string): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw storageError(error, what);
  }
}

/** [start, end) pairs of whole numbers, sorted and disjoint: anything else is not trusted. */
function isSpanList(value: unknown): value is Array<[number, number]> {
  if (!Array.isArray(value)) return false;
  let last = 0;
  for (const span of value) {
    if (!Array.isArray(span) || span.length !== 2 || !Number.isSafeInteger(span[0]) || !Number.isSafeInteger(span[1])) return false;
    const [start, end] = span as [number, number];
    if (start < last || end <= start) return false;
    last = end;
  }
  return true;
}

/** An open staged file as the port's RandomAccessFile: whole positional writes, reads, flushes. */
function randomAccessOver(handle: FileHandle, path: string): RandomAccessFile {
  let closing: Promise<void> | undefined;
  return {
    async write(position, bytes) {
      await storage(async () => {
        for (let done = 0; done < bytes.byteLength; ) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
          done += bytesWritten;
        }
      }, `write ${path}`);
    },
    async read(position, length, into) {
      return storage(async () => {
        const buffer = into !== undefined && into.byteLength >= length ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return new Uint8Array(buffer.buffer, buffer.byteOffset, done);
      }, `read ${path}`);
    },
    async flush() {
      // fdatasync: the data and the size, not the times; one handle, no open per checkpoint.
      await storage(() => handle.datasync(), `flush ${path} to disk`);
    },
    close({ sync }) {
      closing ??= storage(async () => {
        try {
          if (sync) await handle.sync();
        } finally {
          await handle.close();
        }
      }, `write ${path}`);
      return closing;
    },
  };
}
