/**
 * Where the trusted key set and the anti-rollback serial are kept outside the event log: the Node adapter
 * keeps `<dir>/trust.json`, the browser adapter an IndexedDB record. Optional for a platform.
 */
import type { TrustState } from '../../../machines/types.js';

export interface TrustStore {
  read(): Promise<TrustState | null>;
  write(trust: TrustState): Promise<void>;
}
