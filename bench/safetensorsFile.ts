/**
 * A safetensors-like model file for the download benchmarks: an 8-byte little-endian header length,
 * a JSON header naming each tensor's dtype, shape and offsets, then the tensors (random bytes).
 */
import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Writes `tensors` tensors of `tensorBytes` each to `file`; returns the file's size. */
export async function writeSafetensorsLike(file: string, tensors = 64, tensorBytes = 4 * 1024 * 1024): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (let i = 0; i < tensors; i++) {
    header[`model.layers.${i}.weight`] = { dtype: 'F16', shape: [tensorBytes / 2048, 1024], data_offsets: [i * tensorBytes, (i + 1) * tensorBytes] };
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const handle = await open(file, 'w');
  try {
    await handle.write(Buffer.concat([length, json]));
    const tensor = Buffer.allocUnsafe(tensorBytes);
    for (let i = 0; i < tensors; i++) {
      randomFillSync(tensor);
      await handle.write(tensor);
    }
  } finally {
    await handle.close();
  }
  return 8 + json.length + tensors * tensorBytes;
}
