/**
 * Where the trust state is kept besides the event log: `<dir>/trust.json` (keys, threshold, highest
 * serial, rotation, and the log's last record as the chain-end anchor), written atomically and fsynced at
 * every accepted manifest and checkpoint. It outlives a log moved aside.
 */
import { dirname } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { writeFileAtomic } from './durableWrite.js';
import { readFileNoFollow } from './noSymlinks.js';
import { isRawPublicKey } from '../core/trust/keyFormat.js';
import type { SavedTrust, TrustStore } from '../core/ports/trustStore.js';
import { isLogHead } from '../core/log/logAnchor.js';

export const TRUST_FILE = 'trust.json';


/**
 * @example
 * const store = new FileTrustStore('/var/lib/app/models/trust.json')
 */
export class FileTrustStore implements TrustStore {
  constructor(readonly path: string) {}

  async read(): Promise<SavedTrust | null> {
    // Not through a link planted at trust.json: keys must come from the model folder itself.
    const text = await readFileNoFollow(dirname(this.path), this.path, 'read the trusted keys of').catch((error: NodeJS.ErrnoException) => {
      if (error instanceof UpdateError) throw error;
      throw new UpdateError('STORAGE_FAILED', `Could not read ${this.path}: ${error.message}. Check the model folder's permissions.`);
    });
    if (text === null) return null;
    let value: Partial<SavedTrust>;
    try {
      value = JSON.parse(text) as Partial<SavedTrust>;
    } catch {
      value = {};
    }
    const valid =
      Array.isArray(value.keys) &&
      value.keys.every((key) => typeof key === 'string' && isRawPublicKey(key)) &&
      Number.isInteger(value.threshold) &&
      (value.serial === null || Number.isSafeInteger(value.serial)) &&
      typeof value.anchor === 'string' &&
      (value.rotation === undefined || (Number.isSafeInteger(value.rotation) && value.rotation >= 0)) &&
      (value.logHead === undefined || isLogHead(value.logHead));
    if (!valid) {
      throw new UpdateError('STORAGE_FAILED', `${this.path} is damaged. Delete it to start again from the configured trusted keys (a rotation since then must be signed again).`);
    }
    return {
      keys: value.keys!,
      threshold: value.threshold!,
      serial: value.serial ?? null,
      anchor: value.anchor!,
      ...(value.rotation ? { rotation: value.rotation } : {}),
      ...(value.logHead ? { logHead: { seq: value.logHead.seq, hash: value.logHead.hash } } : {}),
    };
  }

  async write(saved: SavedTrust): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(saved, null, 2)}\n`);
  }
}
