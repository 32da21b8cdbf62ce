/**
 * A correct host, for when simulate() is given no hooks: load reads the version's files and checks them
 * against the manifest, migrate writes the converted data beside the old (never over it).
 */
import { createHash } from 'node:crypto';
import type { ModelLoader } from '../core/modelRef.js';
import type { SimulatedHost } from './simulatedWorld.js';

/**
 * @example
 * simulate({ hooks: correctHooks })
 */
export function correctHooks(host: SimulatedHost): ModelLoader<{ version: string }> {
  return {
    async migrate({ from, to }) {
      const data = from ? host.data.get<{ format: string }>(`data@${from.version}`) : undefined;
      await host.data.set(`data@${to.version}`, { format: to.version, from: data?.format ?? null });
    },
    load(model) {
      const files = host.readFiles(model.version);
      if (!files) throw new Error(`version ${model.version} has no files`);
      for (const file of model.files) {
        const bytes = files.get(file.path);
        if (!bytes || createHash('sha256').update(bytes).digest('hex') !== file.sha256) throw new Error(`${model.version}/${file.path} is damaged`);
      }
      return { version: model.version };
    },
    healthCheck: (model, handle) => handle.version === model.version,
  };
}
