/**
 * RangeWriter, the one write path of every download: bytes copied into a few reused slots, one
 * positional write per slot, back-pressure, background flushes, and the first error reported once.
 * Against real files in a temp folder, through FileStagingArea's RandomAccessFile.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RangeWriter } from '../src/core/download/rangeWriter.js';
import type { RandomAccessFile } from '../src/core/ports/stagingArea.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';

let tmp: string;
let staging: FileStagingArea;
const FILE = { version: '1.0.0', path: 'out.bin' };

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-writer-'));
  staging = new FileStagingArea(tmp);
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The file as RandomAccessFile, counting its writes and flushes. */
async function openCounted(size: number): Promise<{ file: RandomAccessFile; writes: number[]; flushes: () => number }> {
  const file = await staging.openRandomAccess(FILE, size);
  const writes: number[] = [];
  let flushes = 0;
  return {
    file: {
      write: (position, bytes) => (writes.push(bytes.length), file.write(position, bytes)),
      read: (position, length, into) => file.read(position, length, into),
      flush: () => (flushes++, file.flush!()),
      close: (options) => file.close(options),
    },
    writes,
    flushes: () => flushes,
  };
}

describe('RangeWriter', () => {
  it('puts any sequence of chunks on disk byte for byte from its start position, in slot-sized writes, whatever their sizes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 40 }), fc.integer({ min: 0, max: 50 }), async (sizes, start) => {
        const chunks = sizes.map((size) => randomBytes(size));
        const body = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
        const prefix = Buffer.alloc(start, 0x61);
        await rm(staging.pathOf(FILE), { force: true });
        const { file, writes } = await openCounted(start + body.length);
        await file.write(0, prefix);
        writes.length = 0;
        let writtenEnd = start;
        const writer = new RangeWriter(file, start, { slotBytes: 64, slots: 2, syncEveryBytes: 128, onWritten: (end) => (writtenEnd = end) });
        // Pushing on after push() said stop is allowed (a chunk already in flight): spare slots cover it.
        for (const chunk of chunks) {
          writer.push(chunk);
          chunk.fill(0); // the caller may reuse its buffer at once
        }
        await writer.end();
        await file.close({ sync: false });
        expect(await readFile(staging.pathOf(FILE))).toEqual(Buffer.concat([prefix, body]));
        expect(writer.written).toBe(start + body.length);
        expect(writtenEnd).toBe(start + body.length);
        // Every write but the last is a full slot.
        expect(writes.slice(0, -1).every((length) => length === 64)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('asks the caller to stop when every slot waits for the disk, and says when one is free again', async () => {
    const { file } = await openCounted(16);
    let drained = 0;
    const writer = new RangeWriter(file, 0, { slotBytes: 8, slots: 2, onDrain: () => drained++ });
    // One slot on its way to disk and one free: go on. Both on their way: stop.
    expect(writer.push(Buffer.alloc(8, 1))).toBe(true);
    expect(writer.push(Buffer.alloc(8, 2))).toBe(false);
    await writer.end();
    await file.close({ sync: false });
    expect(drained).toBe(1);
    expect(await readFile(staging.pathOf(FILE))).toEqual(Buffer.concat([Buffer.alloc(8, 1), Buffer.alloc(8, 2)]));
  });

  it('flushes in the background every syncEveryBytes, one flush at a time, and end() waits for it', async () => {
    const { file, flushes } = await openCounted(64 * 1024);
    const writer = new RangeWriter(file, 0, { slotBytes: 1024, slots: 4, syncEveryBytes: 16 * 1024 });
    for (let i = 0; i < 64; i++) writer.push(randomBytes(1024));
    await writer.end();
    await file.close({ sync: false });
    // 64 KiB at one flush per 16 KiB at most, and at least one: none may overlap another.
    expect(flushes()).toBeGreaterThanOrEqual(1);
    expect(flushes()).toBeLessThanOrEqual(4);
    const none = await openCounted(64 * 1024);
    const quiet = new RangeWriter(none.file, 0, { slotBytes: 1024 });
    for (let i = 0; i < 64; i++) quiet.push(randomBytes(1024));
    await quiet.end();
    await none.file.close({ sync: false });
    expect(none.flushes()).toBe(0);
  });

  it('reports the first write error once, writes nothing after it, and end() rejects with it', async () => {
    const errors: unknown[] = [];
    let writes = 0;
    const failing: RandomAccessFile = {
      write: async () => {
        writes++;
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
      read: async () => new Uint8Array(),
      close: async () => undefined,
    };
    const writer = new RangeWriter(failing, 0, { slotBytes: 4, onError: (error) => errors.push(error) });
    writer.push(Buffer.from('abcdefghij'));
    await expect(writer.end()).rejects.toMatchObject({ code: 'EIO' });
    expect(errors).toHaveLength(1);
    expect(writer.error).toBe(errors[0]);
    expect(writes).toBe(1);
  });
});
