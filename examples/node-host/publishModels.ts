/**
 * Publishes ONNX model versions to a static update-service folder.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publish } from '../../src/publish/index.js';
import { linearModel, type LinearWeights } from './onnxModel.js';

/**
 * @example
 * await publishOnnx(site, '1.0.0', { W: [0.5, 1, 2, 3, 4, 5], B: [1, 0.5] })
 */
export async function publishOnnx(site: string, version: string, weights: LinearWeights): Promise<void> {
  const source = await mkdtemp(join(tmpdir(), `onnx-${version}-`));
  await writeFile(join(source, 'model.onnx'), linearModel(weights));
  await publish({ out: site, version, inputs: [join(source, 'model.onnx')] });
}
