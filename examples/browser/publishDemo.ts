/**
 * Publishes the example's model versions to a static site folder (Node side of the example and its test).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publish } from '../../src/publish/publish.js';
import type { LinearModel } from './model.js';

/**
 * Adds `version` to the site: `model.json` with these weights and `weights.bin`, `padBytes` of filler
 * that makes the download long enough to watch (and to interrupt).
 * @example
 * await publishModel(site, '1.0.0', GOOD_MODEL, 256 * 1024)
 */
export async function publishModel(site: string, version: string, model: LinearModel, padBytes: number): Promise<void> {
  const source = await mkdtemp(join(tmpdir(), `model-${version}-`));
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'model.json'), JSON.stringify(model));
  await writeFile(join(source, 'weights.bin'), randomBytes(padBytes));
  await publish({ out: site, version, inputs: [join(source, 'model.json'), join(source, 'weights.bin')] });
}
