/**
 * The trust state (a rotated key set) beside the event log, in the store's IndexedDB meta database.
 */
import { get, set } from 'idb-keyval';
import type { SavedTrust, TrustStore } from '../core/ports/trustStore.js';
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

  async read(): Promise<SavedTrust | null> {
    return (await get<SavedTrust>(TRUST_KEY, this.meta)) ?? null;
  }

  async write(saved: SavedTrust): Promise<void> {
    await set(TRUST_KEY, saved, this.meta);
  }
}
