/**
 * One GET of a model file over Node sockets, as the Transport port sees it (transport.ts). Two
 * exchanges provide it: the direct one (directHttpExchange.ts, fast, plain responses only) and
 * node:http (nodeHttpExchange.ts, everything else). What they share lives here: the exchange's life
 * (the first failure ends it, the caller's abort ends it) and the transport's own errors, which
 * download/downloadFile.ts turns into the user's.
 */
import type { BodySink, TransportResponse } from '../core/ports/transport.js';
import type { ProxySetting } from './proxy.js';

export interface ExchangeOptions {
  signal: AbortSignal;
  /** Extra CA certificates (Node's roots included) for https. */
  ca: Array<string | Buffer> | undefined;
  /** The proxy option (proxy.ts); undefined follows HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
  proxy?: ProxySetting;
}

/** The response head plus how to read its body: what an exchange resolves with. */
export type Exchange = TransportResponse;
export type { BodySink };

/**
 * The life of one exchange: the first failure ends it (the connection is destroyed and the error goes
 * to whoever waits, the head's promise first, then the body's), and the caller's abort is a failure.
 */
export class ExchangeControl {
  #failure: Error | undefined;
  #waiter: (error: Error) => void;
  readonly #signal: AbortSignal;
  readonly #destroy: () => void;
  readonly #onAbort = (): void => this.fail(aborted(this.#signal));

  constructor(options: ExchangeOptions, destroy: () => void, onHeadFailure: (error: Error) => void) {
    this.#signal = options.signal;
    this.#destroy = destroy;
    this.#waiter = onHeadFailure;
    if (this.#signal.aborted) queueMicrotask(this.#onAbort);
    else this.#signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.settle();
    this.#destroy();
    this.#waiter(error);
  }

  /** From now on a failure goes to `waiter`; if the exchange already failed, it gets that failure now. */
  waitWith(waiter: (error: Error) => void): void {
    this.#waiter = waiter;
    if (this.#failure) waiter(this.#failure);
  }

  /** The exchange is over: an abort can no longer fail it. */
  settle(): void {
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  close(): void {
    this.settle();
    this.#destroy();
  }
}

function aborted(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error('the request was aborted'), { code: 'ABORT_ERR' });
}

/** The peer closed before the body's framing said it was complete. */
export function closedEarly(): Error {
  return Object.assign(new Error('the peer closed the connection inside the body'), { code: 'ECONNRESET' });
}

/** The peer closed before any response head. */
export function closedBeforeHead(): Error {
  return Object.assign(new Error('the server closed the connection without answering'), { code: 'ECONNRESET' });
}
