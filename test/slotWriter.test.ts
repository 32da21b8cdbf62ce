import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SlotWriter } from '../src/node/slotWriter.js';

let tmp: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-slots-'));
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('SlotWriter, the download’s bounded write path', () => {
  it('puts any sequence of chunks on disk byte for byte at the start position, whatever their sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 50 }),
        async (sizes, start) => {
          const file = path.join(tmp, 'out.bin');
          const prefix = Buffer.alloc(start, 0x61);
          await writeFile(file, prefix);
          const chunks = sizes.map((size) => randomBytes(size));
          const expected = Buffer.concat([prefix, ...chunks.map((chunk) => Buffer.from(chunk))]);
          const handle = await open(file, 'r+');
          let reported = 0;
          const writer = new SlotWriter(handle, start, { slotBytes: 64, slots: 2, syncEveryBytes: 128, onWritten: (n) => (reported += n) });
          try {
            // Pushing on after push() said stop is allowed (a chunk already in flight): spare slots cover it.
            for (const chunk of chunks) {
              writer.push(chunk);
              chunk.fill(0); // the caller may reuse its buffer at once
            }
            await writer.end();
          } finally {
            await handle.close();
          }
          expect(await readFile(file)).toEqual(expected);
          expect(reported).toBe(expected.length - start);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps the copied bytes, not the caller’s buffer', async () => {
    const file = path.join(tmp, 'copy.bin');
    const handle = await open(file, 'w');
    const writer = new SlotWriter(handle, 0, { slotBytes: 16 });
    const chunk = Buffer.from('model bytes, 24 of them!');
    writer.push(chunk);
    chunk.fill(0x2d);
    await writer.end();
    await handle.close();
    expect((await readFile(file)).toString()).toBe('model bytes, 24 of them!');
  });

  it('asks the caller to stop when every slot waits for the disk, and says when one is free again', async () => {
    const file = path.join(tmp, 'pressure.bin');
    const handle = await open(file, 'w');
    let drained = 0;
    const writer = new SlotWriter(handle, 0, { slotBytes: 8, slots: 2, onDrain: () => drained++ });
    // One slot on its way to disk and one free: go on. Both on their way: stop.
    expect(writer.push(Buffer.alloc(8, 1))).toBe(true);
    expect(writer.push(Buffer.alloc(8, 2))).toBe(false);
    await writer.end();
    await handle.close();
    expect(drained).toBe(1);
    expect(await readFile(file)).toEqual(Buffer.concat([Buffer.alloc(8, 1), Buffer.alloc(8, 2)]));
  });

  it('reports the first write error once, writes nothing after it, and end() rejects with it', async () => {
    const file = path.join(tmp, 'readonly.bin');
    await writeFile(file, '');
    const handle = await open(file, 'r');
    const errors: unknown[] = [];
    const writer = new SlotWriter(handle, 0, { slotBytes: 4, onError: (error) => errors.push(error) });
    writer.push(Buffer.from('abcdefghij'));
    await expect(writer.end()).rejects.toMatchObject({ code: 'EBADF' });
    await handle.close();
    expect(errors).toHaveLength(1);
    expect(writer.error).toBe(errors[0]);
    expect(await readFile(file, 'utf8')).toBe('');
  });
});
