/**
 * Where the trusted key set and the anti-rollback serial are kept outside the event log: the Node adapter
 * keeps `<dir>/trust.json`, the browser adapter an IndexedDB record. Optional for a platform.
 */
import type { TrustState } from '../../../machines/types.js';
import type { LogHead } from '../log/logAnchor.js';

/** The trust state as kept, with the log's last record when it was written (the chain-end anchor). */
export type SavedTrust = TrustState & { logHead?: LogHead };

export interface TrustStore {
  read(): Promise<SavedTrust | null>;
  write(saved: SavedTrust): Promise<void>;
}
