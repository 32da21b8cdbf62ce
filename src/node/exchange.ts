/**
 * One GET of a model file, as the download sees it: a status, headers, and a body streamed into the
 * staging file. Two transports provide it: the direct one (directHttpExchange.ts, fast, plain
 * responses only) and node:http (nodeHttpExchange.ts, everything else). What they share lives here:
 * the exchange's life (first failure wins, stall timer, abort), the body path (size limit, hash, slot
 * writer, flow control), and the errors.
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { UpdateError } from '../errors.js';
import { storageError } from '../storageError.js';
import type { ProxySetting } from './proxy.js';
import { SlotWriter } from './slotWriter.js';

export interface BodySink {
  file: FileHandle;
  /** File offset of the first body byte. */
  position: number;
  hash: Hash;
  /** Body bytes allowed before the file would outgrow the manifest's size. */
  limit: number;
  expectedSize: number;
  onBytes: ((delta: number) => void) | undefined;
}

export interface Exchange {
  status: number;
  statusText: string;
  /** Lowercase names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /**
   * Streams the body into sink.file; resolves with the body bytes received once they are all written.
   * On a network failure, stall or abort, writes what already arrived before rejecting.
   */
  receive(sink: BodySink): Promise<number>;
  /** Drops the connection. Idempotent. */
  close(): void;
}

export interface ExchangeOptions {
  signal: AbortSignal | undefined;
  stallTimeoutMs: number;
  ca: Array<string | Buffer> | undefined;
  /** The proxy option (proxy.ts); undefined follows HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
  proxy?: ProxySetting;
}

/**
 * The life of one exchange: the first failure ends it (the connection is destroyed and the error goes
 * to whoever waits, the head's promise first, then the body's), a stall timer that every arrival
 * re-arms, and the caller's abort.
 */
export class ExchangeControl {
  readonly url: URL;
  #failure: UpdateError | undefined;
  #waiter: (error: UpdateError) => void;
  #timer: NodeJS.Timeout | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #stallTimeoutMs: number;
  readonly #destroy: () => void;
  readonly #onAbort = (): void => this.fail(cancelled());

  constructor(url: URL, options: ExchangeOptions, destroy: () => void, onHeadFailure: (error: UpdateError) => void) {
    this.url = url;
    this.#signal = options.signal;
    this.#stallTimeoutMs = options.stallTimeoutMs;
    this.#destroy = destroy;
    this.#waiter = onHeadFailure;
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.arm();
    // Aborted before the exchange began (while a proxy connection was set up): the listener missed it.
    if (this.#signal?.aborted) this.fail(cancelled());
  }

  get failure(): UpdateError | undefined {
    return this.#failure;
  }

  fail(error: UpdateError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.settle();
    this.#destroy();
    this.#waiter(error);
  }

  /** From now on a failure goes to `waiter`; if the exchange already failed, it gets that failure now. */
  waitWith(waiter: (error: UpdateError) => void): void {
    this.#waiter = waiter;
    if (this.#failure) waiter(this.#failure);
  }

  /** Something arrived: the stall deadline moves (refresh() reuses the timer). */
  arm(): void {
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.fail(stalled(this.url, this.#stallTimeoutMs)), this.#stallTimeoutMs);
    else this.#timer.refresh();
  }

  /** The exchange is over: no stall or abort can fail it any more. */
  settle(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  close(): void {
    this.settle();
    this.#destroy();
  }
}

export interface BodyPipe {
  /** Takes the next body bytes (valid only during the call). False: pause the transport until `resume`. */
  take(bytes: Uint8Array): boolean;
  /** The body is complete. */
  end(): void;
  /** Body bytes received, once all are written; rejects with the exchange's failure after writing what came. */
  readonly done: Promise<number>;
}

/**
 * The body path: size limit, hash, then the slot writer; `resume` restarts a paused transport.
 * `freshChunks`: every chunk arrives in a newly allocated buffer (node:http), see SlotWriter.
 */
export function pipeBody(control: ExchangeControl, sink: BodySink, resume: () => void, freshChunks = false): BodyPipe {
  let received = 0;
  let settle!: { resolve: (received: number) => void; reject: (error: unknown) => void };
  const done = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
  const writer = new SlotWriter(sink.file, sink.position, {
    onWritten: sink.onBytes,
    onDrain: () => {
      if (!control.failure) resume();
    },
    onError: (error) => control.fail(storageError(error, 'write the download to disk')),
    collectGarbage: freshChunks,
  });
  let finished = false;
  // Whatever ends the transfer, what already arrived is written first (the next attempt resumes it).
  const finish = (error?: UpdateError): void => {
    if (finished) return;
    finished = true;
    void writer.end().then(
      () => (error ? settle.reject(error) : settle.resolve(received)),
      (writeError: unknown) => settle.reject(storageError(writeError, 'write the download to disk')),
    );
  };
  control.waitWith(finish);
  return {
    done,
    take(bytes) {
      if (control.failure) return false;
      control.arm();
      if (received + bytes.length > sink.limit) {
        control.fail(sizeMismatch(control.url, `it sent more than ${sink.expectedSize} bytes`, sink.expectedSize));
        return false;
      }
      received += bytes.length;
      sink.hash.update(bytes);
      return writer.push(bytes);
    },
    end() {
      control.settle();
      finish();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Errors.

/** TLS failures that will not fix themselves by retrying. */
const TLS_CONFIG_ERRORS = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

export function cancelled(): UpdateError {
  return new UpdateError('CANCELLED', 'The download was cancelled; the partial file is kept and the next attempt resumes it.');
}

export function stalled(url: URL, ms: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} sent nothing for ${ms} ms; the partial file is kept and the next attempt resumes it.`);
}

export function closedEarly(url: URL): UpdateError {
  return new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} closed before the whole file arrived; the partial file is kept and the next attempt resumes it.`);
}

export function sizeMismatch(url: URL, what: string, expectedSize: number): UpdateError {
  return new UpdateError(
    'SIZE_MISMATCH',
    `The manifest says ${url.href} is ${expectedSize} bytes but ${what}; the partial file was deleted. The manifest or the server is out of date: check for updates again, or tell the publisher.`,
  );
}

export function networkError(error: unknown, url: URL): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const reason = error instanceof Error ? error.message : String(error);
  // node's HTTP parser (HPE_*): the answer is not HTTP; retrying will not fix that.
  if (code.startsWith('HPE_')) {
    return new UpdateError('DOWNLOAD_FAILED', `${url.host} sent a malformed HTTP response (${reason}); the server is misconfigured, tell the publisher.`, { cause: error });
  }
  if (TLS_CONFIG_ERRORS.test(code)) {
    return new UpdateError('DOWNLOAD_FAILED', `TLS with ${url.host} failed (${reason}); check the server's certificate or the URL.`, { cause: error });
  }
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not download from ${url.host} (${reason}); check the connection. Any partial file is kept and the next attempt resumes it.`, { cause: error });
}
