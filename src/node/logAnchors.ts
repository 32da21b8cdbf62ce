/**
 * The chain-end anchors of a model folder as the CLI reads them: the `logHead` of `active.json` and of
 * `trust.json`. `log --verify` checks the log against them; `log --quarantine` clears them, since the new
 * log starts again from record 0.
 */
import { join } from 'node:path';
import type { PlacedAnchor } from '../core/log/logAnchor.js';
import { FsModelStore } from './fsModelStore.js';
import { FileTrustStore, TRUST_FILE } from './fileTrustStore.js';

/**
 * @example
 * const damage = missingTail(readLogFile(path).records, await readLogAnchors(dir))
 */
export async function readLogAnchors(dir: string): Promise<PlacedAnchor[]> {
  const pointer = await new FsModelStore(dir).readPointer();
  const trust = await new FileTrustStore(join(dir, TRUST_FILE)).read();
  const anchors: PlacedAnchor[] = [];
  if (pointer?.logHead) anchors.push({ head: pointer.logHead, where: 'the active pointer (active.json)' });
  if (trust?.logHead) anchors.push({ head: trust.logHead, where: `${TRUST_FILE}` });
  return anchors;
}

/**
 * Removes the anchors, keeping everything else (the active version, the keys, the serial, the rotation).
 * @example
 * await clearLogAnchors(dir) // after the log was set aside
 */
export async function clearLogAnchors(dir: string): Promise<void> {
  const store = new FsModelStore(dir);
  const pointer = await store.readPointer();
  if (pointer?.logHead) {
    const { logHead: _head, ...rest } = pointer;
    await store.writePointer(rest);
  }
  const trustStore = new FileTrustStore(join(dir, TRUST_FILE));
  const trust = await trustStore.read();
  if (trust?.logHead) {
    const { logHead: _head, ...rest } = trust;
    await trustStore.write(rest);
  }
}
