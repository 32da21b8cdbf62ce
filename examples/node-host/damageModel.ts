/**
 * Makes the damaged copy of a model the walk publishes: 4 KiB of its bytes, at 70 % of the file, XOR-ed
 * with 0x5a. The copy still loads and runs (the damage falls in the weights), it just answers wrongly: on
 * the golden tone Silero v6's speech probability goes from 0.0005 to about 0.55. Signed and published like
 * any version, only the health check can tell.
 *
 *   npx tsx examples/node-host/damageModel.ts <model.onnx> <damaged copy.onnx>
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A copy of the bytes with 4 KiB at 70 % altered.
 * @example
 * await writeFile('damaged.onnx', damageWeights(await readFile('silero_vad_v6.onnx')))
 */
export function damageWeights(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const from = Math.floor(copy.length * 0.7);
  for (let i = from; i < Math.min(copy.length, from + 4096); i++) copy[i]! ^= 0x5a;
  return copy;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [source, target] = process.argv.slice(2);
  if (!source || !target) {
    console.error('usage: npx tsx examples/node-host/damageModel.ts <model.onnx> <damaged copy.onnx>');
    process.exit(2);
  }
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, damageWeights(await readFile(source)));
  console.log(`wrote ${target}: ${source} with 4 KiB at 70 % altered`);
}
