/**
 * When the extra connections of a download open: only once the first one has shown that the link,
 * not this device, is what limits it. More connections only help against a limit per connection (a
 * server's or a proxy's throttle, a long fat pipe); on a fast link they cost the device more (the
 * in-order hash reads back what they wrote ahead, more writes at once) and lose to one stream.
 *
 * The first connection's answer starts the probe: if fewer than {@link PROBE_BYTES} arrived within
 * {@link PROBE_MS} (under about 50 MB/s), the others open; if they arrived sooner, it stays one stream.
 * Time comes from the injected timers, so tests decide it.
 */
import type { Timers } from './transferGuard.js';

const MIB = 1024 * 1024;
/** Bytes the first connection must receive within PROBE_MS to stay alone. */
export const PROBE_BYTES = 8 * MIB;
/** How long the first connection has for PROBE_BYTES (8 MiB in 160 ms: about 52 MB/s). */
export const PROBE_MS = 160;

/**
 * @example
 * const probe = new ConnectionProbe(timers, () => bytesFetched, () => openTheOthers())
 * probe.start() // when the first answer confirmed ranges
 * if (probe.fast) mergeTheRest() // before the first connection takes its next part
 */
export class ConnectionProbe {
  #timer: unknown;
  #base = 0;
  #state: 'idle' | 'probing' | 'fast' | 'slow' = 'idle';

  constructor(
    private readonly timers: Timers,
    private readonly received: () => number,
    private readonly open: () => void,
  ) {}

  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'probing';
    this.#base = this.received();
    this.#timer = this.timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state !== 'probing') return;
      if (this.received() - this.#base >= PROBE_BYTES) {
        this.#state = 'fast';
        return;
      }
      this.#state = 'slow';
      this.open();
    }, PROBE_MS);
  }

  /** The first connection received PROBE_BYTES before PROBE_MS ran out: it stays alone (decided now, for good). */
  get fast(): boolean {
    if (this.#state === 'probing' && this.received() - this.#base >= PROBE_BYTES) this.settle('fast');
    return this.#state === 'fast';
  }

  /** The others were opened. */
  get slow(): boolean {
    return this.#state === 'slow';
  }

  dispose(): void {
    if (this.#state === 'probing') this.settle('fast');
  }

  private settle(state: 'fast' | 'slow'): void {
    this.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = state;
  }
}
