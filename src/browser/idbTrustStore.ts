/**
 * The trust state (a rotated key set) beside the event log, in the store's IndexedDB meta database.
 */
import { get, set } from 'idb-keyval';
import type { TrustState } from '../../machines/types.js';
import type { TrustStore } from '../core/ports/trustStore.js';
import { openDatabases } from './idbLayout.js';

const TRUST_KEY = 'trust';

export class IdbTrustStore implements TrustStore {
  private readonly meta;

  /**
   * @example
   * const trust = new IdbTrustStore('asr'); await trust.read()
   */
  constructor(name: string) {
    this.meta = openDatabases(name).meta;
  }

  async read(): Promise<TrustState | null> {
    return (await get<TrustState>(TRUST_KEY, this.meta)) ?? null;
  }

  async write(trust: TrustState): Promise<void> {
    await set(TRUST_KEY, trust, this.meta);
  }
}
