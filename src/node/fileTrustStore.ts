/**
 * Where a rotated key set is kept besides the event log: `<dir>/trust.json`, written atomically and only
 * when a manifest signed by the current keys rotates them. It outlives a log moved aside.
 */
import { dirname } from 'node:path';
import type { TrustState } from '../../machines/types.js';
import { UpdateError } from '../core/errors.js';
import { writeFileAtomic } from './fsModelStore.js';
import { readFileNoFollow } from './noSymlinks.js';
import { isRawPublicKey } from '../core/trust/keyFormat.js';
import type { TrustStore } from '../core/ports/trustStore.js';

export const TRUST_FILE = 'trust.json';


/**
 * @example
 * const store = new FileTrustStore('/var/lib/app/models/trust.json')
 */
export class FileTrustStore implements TrustStore {
  constructor(readonly path: string) {}

  async read(): Promise<TrustState | null> {
    // Not through a link planted at trust.json: keys must come from the model folder itself.
    const text = await readFileNoFollow(dirname(this.path), this.path, 'read the trusted keys of').catch((error: NodeJS.ErrnoException) => {
      if (error instanceof UpdateError) throw error;
      throw new UpdateError('STORAGE_FAILED', `Could not read ${this.path}: ${error.message}. Check the model folder's permissions.`);
    });
    if (text === null) return null;
    let value: Partial<TrustState>;
    try {
      value = JSON.parse(text) as Partial<TrustState>;
    } catch {
      value = {};
    }
    const valid =
      Array.isArray(value.keys) &&
      value.keys.every((key) => typeof key === 'string' && isRawPublicKey(key)) &&
      Number.isInteger(value.threshold) &&
      (value.serial === null || Number.isSafeInteger(value.serial)) &&
      typeof value.anchor === 'string';
    if (!valid) {
      throw new UpdateError('STORAGE_FAILED', `${this.path} is damaged. Delete it to start again from the configured trusted keys (a rotation since then must be signed again).`);
    }
    return { keys: value.keys!, threshold: value.threshold!, serial: value.serial ?? null, anchor: value.anchor! };
  }

  async write(trust: TrustState): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(trust, null, 2)}\n`);
  }
}
