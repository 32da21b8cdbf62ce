/**
 * The one writer of the trust state kept outside the log (trust.json on Node): an accepted manifest's
 * trust state and the log's current end (the chain-end anchor) go through one queue, so writes never
 * overtake each other and each one carries the newest trust state.
 */
import type { TrustState } from '../../../machines/types.js';
import type { LogHead } from '../log/logAnchor.js';
import type { SavedTrust, TrustStore } from '../ports/trustStore.js';

export class TrustKeeper {
  private saved: SavedTrust | null = null;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  /**
   * @example
   * const keeper = new TrustKeeper(platform.trust, () => logHeadNow())
   */
  constructor(
    private readonly store: TrustStore | undefined,
    /** The log's last record, durable when it returns. */
    private readonly head: () => Promise<LogHead | null>,
  ) {}

  /** Reads the kept state (trust and anchor); null when there is none. */
  async read(): Promise<SavedTrust | null> {
    this.saved = (await this.store?.read()) ?? null;
    return this.saved;
  }

  /** Keeps a new trust state, with the log's current end; resolves when it is durable. */
  save(trust: TrustState): Promise<void> {
    this.saved = { ...trust };
    return this.enqueue('save');
  }

  /** Writes the kept trust state again with the log's current end; nothing when none is kept yet. */
  anchor(): Promise<void> {
    if (!this.saved || this.closed) return Promise.resolve();
    return this.enqueue('anchor');
  }

  /** No more anchors after the updater stops (a later process owns the folder). */
  close(): void {
    this.closed = true;
  }

  private enqueue(kind: 'save' | 'anchor'): Promise<void> {
    const store = this.store;
    if (!store) return Promise.resolve();
    const run = this.queue.then(async () => {
      // An anchor still queued, or waiting for the log, when the updater stopped is dropped: written
      // later it could name a log that is gone (set aside, or closed with no head to give).
      if (kind === 'anchor' && this.closed) return;
      const { logHead: _old, ...trust } = this.saved!;
      const logHead = await this.head();
      if (kind === 'anchor' && this.closed) return;
      await store.write(logHead ? { ...trust, logHead } : trust);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** The trust state without the anchor stored beside it. */
export function trustOf(saved: SavedTrust): TrustState {
  const { logHead: _anchor, ...trust } = saved;
  return trust;
}
