/**
 * Bulk transfer of one model file on Node: HTTP/1.1 GET straight into a file, hashing on the way.
 *
 * Why not node:http: its client copies every body chunk out of a fresh 64 KiB socket buffer, so a 1 GiB
 * body makes 2 GiB of short-lived Buffers. V8 only collects them after ~64 MB of external memory has
 * piled up, which put peak RSS at 85-130 MB and cost a third of the time (measured, bench/download.ts).
 * Here the socket reads (net/tls `onread`) straight into a fixed pool of four 1 MiB slots, each slot is
 * hashed in place and written with one pwritev, and reading pauses while every slot waits for the disk:
 * memory stays at ~4 MiB whatever the file size. The price is the small HTTP/1.1 response reader below
 * (status line, headers, Content-Length / chunked / close-delimited bodies); requests are plain GETs
 * with `Connection: close`, so there is no keep-alive or pipelining to get wrong.
 *
 * One call is one attempt: the statechart owns retries and back-off, and this module leaves the partial
 * file in a state the next attempt resumes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { UpdateError } from '../errors.js';

export interface DownloadFileOptions {
  /** Absolute http: or https: URL. */
  url: string;
  /** Staging file; may already hold a prefix from an earlier attempt, which is resumed. */
  partPath: string;
  /** Size from the manifest: the download fails with SIZE_MISMATCH at the first byte beyond it. */
  expectedSize: number;
  /** Abort rejects with UpdateError('CANCELLED') and keeps the partial file for a later resume. */
  signal?: AbortSignal;
  /** Called with the bytes just written to partPath (about once per MiB); the caller computes progress. */
  onBytes?: (delta: number) => void;
  /**
   * Called once the server has agreed where the body starts, before the first onBytes: `offset` is the
   * number of bytes already in partPath (0 when starting over), so progress is offset + sum of deltas.
   */
  onStart?: (offset: number) => void;
  /** No byte for this long fails with DOWNLOAD_STALLED. Default 30 000. */
  stallTimeoutMs?: number;
  headers?: Record<string, string>;
  /** Extra CA certificates (PEM) to trust for https, on top of Node's roots: a private model server's. */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface DownloadFileResult {
  /** Bytes in partPath at the end (equals expectedSize). */
  size: number;
  /** Lowercase hex SHA-256 of the whole file, the kept prefix included. */
  sha256: string;
  /** Bytes kept from an earlier attempt (0 when started over). */
  resumedFrom: number;
  /** Bytes received over the network in this call. */
  bytesFetched: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;
/** Four slots: one being written while the others fill keeps disk and network both busy. */
const SLOT_SIZE = MIB;
const SLOT_COUNT = 4;
/** A slot with less room than this is handed to the disk: tiny reads would cost more than they carry. */
const MIN_READ = 64 * KIB;
/** Where bytes land that arrive while reading is paused (TLS keeps emitting what it already decrypted). */
const SPILL_SIZE = 64 * KIB;
const MAX_HEAD_BYTES = 64 * KIB;
const MAX_REDIRECTS = 5;
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Dropped when a redirect leaves the origin they were meant for. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
/** Headers this module writes itself: framing and connection handling are not the caller's to change. */
const RESERVED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'accept-encoding', 'range', 'if-range', 'te', 'upgrade']);
/** TLS failures that will not fix themselves by retrying. */
const TLS_CONFIG_ERRORS = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/** What the first attempt learned about the resource, so a later attempt resumes only the same bytes. */
interface PartMeta {
  expectedSize: number;
  etag?: string;
  lastModified?: string;
}

/**
 * Downloads `url` into `partPath`, resuming a prefix left by an earlier attempt, and returns the SHA-256
 * of the whole file. The file is fsynced before the promise resolves. Never retries: every failure is an
 * {@link UpdateError} whose code tells the caller whether a retry can help.
 *
 * @example
 * const { sha256 } = await downloadFile({
 *   url: 'https://models.example.com/1.2.0/model.bin',
 *   partPath: '/var/lib/app/models/staging/1.2.0/model.bin',
 *   expectedSize: 734_003_200,
 *   onStart: (offset) => (done = offset),
 *   onBytes: (n) => (done += n),
 * });
 * if (sha256 !== file.sha256) throw new Error('corrupt download');
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const { partPath, expectedSize, signal, onBytes, onStart } = options;
  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  let url = parseUrl(options.url);
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UpdateError('INVALID_ARGUMENT', `expectedSize must be a whole number of bytes, got ${expectedSize}.`);
  }
  if (!(stallTimeoutMs > 0)) {
    throw new UpdateError('INVALID_ARGUMENT', `stallTimeoutMs must be a positive number, got ${stallTimeoutMs}.`);
  }
  let headers = normalizeHeaders(options.headers);
  const ca = options.ca === undefined ? undefined : [...tls.rootCertificates, ...[options.ca].flat()];
  throwIfAborted(signal);

  const metaPath = `${partPath}.meta`;
  const meta = await readMeta(metaPath);
  let prefix = await fileSize(partPath);
  // A prefix of a different size of file cannot belong to this one, whatever the server says.
  if (prefix > expectedSize || (prefix > 0 && meta !== undefined && meta.expectedSize !== expectedSize)) {
    await storage(() => truncate(partPath, 0), `truncate ${partPath}`);
    prefix = 0;
  }

  let hash = createHash('sha256');
  if (prefix > 0) prefix = await hashPrefix(partPath, prefix, hash, signal);
  if (prefix === expectedSize && prefix > 0) {
    // Nothing left to fetch; the caller checks the hash, so a bad prefix still cannot be installed.
    await fsyncFile(partPath);
    await removeQuietly(metaPath);
    return { size: prefix, sha256: hash.digest('hex'), resumedFrom: prefix, bytesFetched: 0 };
  }

  let redirects = 0;
  let restarted = false;
  for (;;) {
    const requestHeaders = { ...headers };
    if (url.username !== '' && requestHeaders.authorization === undefined) {
      const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      requestHeaders.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
    }
    if (prefix > 0) {
      requestHeaders.range = `bytes=${prefix}-`;
      const validator = meta?.etag ?? meta?.lastModified;
      if (validator !== undefined) requestHeaders['if-range'] = validator;
    }
    const exchange = await openExchange(url, requestHeaders, { signal, stallTimeoutMs, ca });
    let received: number;
    try {
      const { status } = exchange;

      if (REDIRECT_STATUSES.has(status)) {
        exchange.close();
        const location = exchange.headers.location;
        if (location === undefined) {
          throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} without a Location header; the server is misconfigured.`);
        }
        if (++redirects > MAX_REDIRECTS) {
          throw new UpdateError('DOWNLOAD_FAILED', `${options.url} redirected more than ${MAX_REDIRECTS} times; check the URL in the manifest.`);
        }
        const next = parseUrl(location, url);
        if (next.origin !== url.origin) headers = withoutCredentials(headers);
        url = next;
        continue;
      }

      if (status === 416 || (status === 206 && contentRangeStart(exchange.headers) !== prefix)) {
        exchange.close();
        if (prefix === 0 || restarted) {
          const when = restarted ? 'even after starting over' : `to a request for bytes ${prefix}-`;
          throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${when}; the server's range support is broken, tell the publisher.`);
        }
        restarted = true;
        await storage(() => truncate(partPath, 0), `truncate ${partPath}`);
        prefix = 0;
        hash = createHash('sha256');
        continue;
      }

      if (status === 429 || status >= 500) {
        exchange.close();
        const retryAfterMs = parseRetryAfter(exchange.headers['retry-after']);
        const wait = retryAfterMs === undefined ? '' : ` and asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
        throw new UpdateError('SERVICE_UNAVAILABLE', `${url.href} answered ${status}${wait}; try again later.`, retryAfterMs === undefined ? {} : { retryAfterMs });
      }
      if (status !== 200 && status !== 206) {
        exchange.close();
        const hint = status >= 400 ? 'check the URL in the manifest and the access rights' : 'the server does not serve plain files';
        throw new UpdateError('DOWNLOAD_FAILED', `${url.href} answered ${status} ${exchange.statusText}`.trimEnd() + `; ${hint}.`);
      }

      if (status === 200 && prefix > 0) {
        // The server ignored Range or the file changed (If-Range failed): the body is the whole file.
        prefix = 0;
        hash = createHash('sha256');
      }
      const declared = declaredTotal(exchange.headers, status);
      if (declared !== undefined && declared !== expectedSize) {
        exchange.close();
        await discardPartial(partPath, metaPath);
        throw sizeMismatch(url, `the server says it holds ${declared} bytes`, expectedSize);
      }

      await writeMeta(metaPath, exchange.headers, expectedSize);
      onStart?.(prefix);
      received = await receiveInto(exchange, partPath, { position: prefix, hash, limit: expectedSize - prefix, expectedSize, onBytes });
    } catch (error) {
      // Whatever failed before or while reading the body, the socket must not outlive this attempt.
      exchange.close();
      if (error instanceof UpdateError && error.code === 'SIZE_MISMATCH') await discardPartial(partPath, metaPath);
      throw error;
    }
    const size = prefix + received;
    if (size < expectedSize) {
      throw new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} ended after ${size} of ${expectedSize} bytes; the partial file is kept and the next attempt resumes it.`);
    }
    await removeQuietly(metaPath);
    return { size, sha256: hash.digest('hex'), resumedFrom: prefix, bytesFetched: received };
  }
}

/** Opens partPath at the resume position, streams the body into it and fsyncs it once complete. */
async function receiveInto(exchange: Exchange, partPath: string, sink: Omit<BodySink, 'file'>): Promise<number> {
  const file = await storage(() => open(partPath, sink.position > 0 ? 'r+' : 'w'), `open ${partPath}`);
  try {
    // Positional writes below; a stale tail past the prefix must not survive.
    if (sink.position > 0) await storage(() => file.truncate(sink.position), `truncate ${partPath}`);
    const received = await exchange.receive({ ...sink, file });
    if (sink.position + received === sink.expectedSize) await storage(() => file.sync(), `flush ${partPath} to disk`);
    return received;
  } finally {
    await file.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------
// One HTTP/1.1 exchange over a socket that reads into a fixed set of buffers.

interface BodySink {
  file: FileHandle;
  /** File offset of the first body byte. */
  position: number;
  hash: Hash;
  /** Body bytes allowed before the file would outgrow the manifest's size. */
  limit: number;
  expectedSize: number;
  onBytes: ((delta: number) => void) | undefined;
}

interface Exchange {
  status: number;
  statusText: string;
  /** Lowercase names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /**
   * Streams the body into sink.file; resolves with the body bytes received once they are all written.
   * On a network failure, stall or abort, writes what already arrived before rejecting.
   */
  receive(sink: BodySink): Promise<number>;
  /** Drops the connection. Idempotent; a no-op after receive settled. */
  close(): void;
}

interface ExchangeOptions {
  signal: AbortSignal | undefined;
  stallTimeoutMs: number;
  ca: Array<string | Buffer> | undefined;
}

interface Slot {
  buffer: Buffer;
  /** Bytes of the slot already read into. */
  fill: number;
  /** Waiting for its write to finish: not to be read into. */
  busy: boolean;
}

/** Body bytes for one pwritev, and the slot they live in (freed when the write is done). */
interface WriteBatch {
  segments: Buffer[];
  bytes: number;
  slot: Slot | undefined;
}

/**
 * Sends the GET and resolves once the response head is in, with reading paused so the caller can decide
 * what to do with the body. Rejects with an UpdateError if no head arrives.
 */
function openExchange(url: URL, headers: Record<string, string>, options: ExchangeOptions): Promise<Exchange> {
  const { signal, stallTimeoutMs } = options;
  return new Promise<Exchange>((resolveHead, rejectHead) => {
    // The head is read through `spill` too; the slots only exist once a body is wanted, so redirects
    // and error answers cost 64 KiB, not 4 MiB.
    const spill = Buffer.allocUnsafeSlow(SPILL_SIZE);
    let slots: Slot[] = [];
    const parser = new ResponseParser(url);
    let current = 0;
    /** What the socket reads into next; Node asks for it right after each read callback. */
    let target: Buffer = spill;
    let phase: 'head' | 'decide' | 'body' | 'done' | 'failed' | 'closed' = 'head';
    let paused = false;
    /** Copies of bytes that arrived while paused or before the body was wanted, in order. */
    let backlog: Buffer[] = [];
    let eof = false;
    let socketError: unknown;

    let sink: BodySink | undefined;
    let received = 0;
    let batch: WriteBatch = { segments: [], bytes: 0, slot: undefined };
    const queue: WriteBatch[] = [];
    let writing = false;
    let position = 0;
    let writeError: UpdateError | undefined;
    let outcome: { error?: unknown } | undefined;
    let settleBody: ((error: unknown) => void) | undefined;

    let timer: NodeJS.Timeout | undefined = setTimeout(onStall, stallTimeoutMs);
    const disarm = (): void => {
      clearTimeout(timer);
      timer = undefined;
    };
    const onAbort = (): void => {
      if (phase === 'head') failHead(cancelled());
      else if (phase === 'body') fail(cancelled(), 'keep');
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const onread: net.OnReadOpts = { buffer: () => target, callback: (length, view) => onRead(length, view as Buffer) };
    // tls.connect documents `onread` (as for net.Socket); @types/node 20 just lacks it.
    const tlsOptions: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
      host,
      port: Number(url.port || 443),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['http/1.1'],
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      onread,
    };
    const socket = url.protocol === 'https:' ? tls.connect(tlsOptions) : net.connect({ host, port: Number(url.port || 80), onread });
    socket.on('error', onSocketError);
    socket.on('end', onEof);
    socket.on('close', onEof);
    socket.write(requestHead(url, headers));

    const exchange: Exchange = {
      status: 0,
      statusText: '',
      headers: {},
      receive(bodySink) {
        if (phase !== 'decide') return Promise.reject(new Error('receive() called twice or after close()'));
        sink = bodySink;
        position = bodySink.position;
        slots = Array.from({ length: SLOT_COUNT }, () => ({ buffer: Buffer.allocUnsafeSlow(SLOT_SIZE), fill: 0, busy: false }));
        phase = 'body';
        timer = setTimeout(onStall, stallTimeoutMs);
        const settled = new Promise<number>((resolve, reject) => {
          settleBody = (error) => (error === undefined ? resolve(received) : reject(error));
        });
        if (signal?.aborted) fail(cancelled(), 'keep');
        else if (socketError !== undefined) fail(networkError(socketError, url), 'keep');
        else if (parser.done) finish();
        else guarded(resume);
        return settled;
      },
      close() {
        if (phase === 'done' || phase === 'failed' || phase === 'closed') return;
        phase = 'closed';
        disarm();
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
      },
    };

    function onRead(length: number, view: Buffer): boolean {
      try {
        timer?.refresh();
        const data = view.subarray(0, length);
        if (phase === 'head') return onHeadBytes(data);
        if (phase !== 'body' || paused) {
          backlog.push(Buffer.from(data));
          return false;
        }
        const slot = slots[current]!;
        const room = SLOT_SIZE - slot.fill;
        if (view.buffer === slot.buffer.buffer && view.byteOffset === slot.buffer.byteOffset + slot.fill) {
          slot.fill += length;
          consume(data);
        } else if (length <= room) {
          // The first read after a pause lands in `spill`: move it into the slot rather than allocating.
          data.copy(slot.buffer, slot.fill);
          slot.fill += length;
          consume(slot.buffer.subarray(slot.fill - length, slot.fill));
        } else {
          consume(Buffer.from(data));
        }
        return keepReading();
      } catch (error) {
        // Nothing may escape into Node's stream internals.
        if (phase === 'head') failHead(error);
        else failWith(error);
        return false;
      }
    }

    function failWith(error: unknown): void {
      fail(error, error instanceof UpdateError && error.code === 'SIZE_MISMATCH' ? 'delete' : 'keep');
    }

    function guarded(action: () => void): void {
      try {
        action();
      } catch (error) {
        failWith(error);
      }
    }

    function onHeadBytes(data: Buffer): boolean {
      const bodyStart = parser.feedHead(data);
      if (bodyStart < 0) return true; // the parser copied the partial head; the slot is free again
      // The body's first bytes came with the head: keep a copy for when (if) the body is wanted.
      if (bodyStart < data.length) backlog.push(Buffer.from(data.subarray(bodyStart)));
      const head = parser.head!;
      exchange.status = head.status;
      exchange.statusText = head.statusText;
      exchange.headers = head.headers;
      phase = 'decide';
      pause();
      disarm();
      resolveHead(exchange);
      return false;
    }

    function consume(data: Buffer): void {
      parser.feedBody(data, (payload) => {
        if (received + payload.length > sink!.limit) {
          throw sizeMismatch(url, 'the server sent more bytes than that', sink!.expectedSize);
        }
        received += payload.length;
        sink!.hash.update(payload);
        batch.segments.push(payload);
        batch.bytes += payload.length;
      });
      if (parser.done) finish();
    }

    /** After bytes went into the current slot: hands full slots to the disk and decides whether to read on. */
    function keepReading(): boolean {
      if (phase !== 'body') return false;
      const slot = slots[current]!;
      if (SLOT_SIZE - slot.fill < MIN_READ) {
        submit(slot);
        current = (current + 1) % SLOT_COUNT;
      }
      const next = slots[current]!;
      if (next.busy) {
        pause();
        return false;
      }
      target = next.buffer.subarray(next.fill);
      return true;
    }

    function pause(): void {
      paused = true;
      target = spill;
    }

    /** Called when a slot frees up or the body is first wanted: replays the backlog, then reads on. */
    function resume(): void {
      if (phase !== 'body' || !paused || slots[current]!.busy) return;
      paused = false;
      while (backlog.length > 0 && phase === 'body') {
        consume(backlog.shift()!);
        if (!keepReading()) return;
      }
      if (phase !== 'body') return;
      if (eof) {
        onEof();
        return;
      }
      target = slots[current]!.buffer.subarray(slots[current]!.fill);
      // The read already armed goes into `spill` (Node fixed it at the last callback); onRead copies it out.
      socket.resume();
    }

    function submit(slot: Slot | undefined): void {
      const full = batch;
      batch = { segments: [], bytes: 0, slot: undefined };
      if (slot !== undefined) slot.fill = 0;
      if (full.bytes === 0) return;
      full.slot = slot;
      if (slot !== undefined) slot.busy = true;
      queue.push(full);
      pump();
    }

    function pump(): void {
      if (writing || queue.length === 0) return;
      const next = queue.shift()!;
      writing = true;
      writeAll(sink!.file, next.segments, position).then(
        () => {
          writing = false;
          position += next.bytes;
          if (next.slot !== undefined) next.slot.busy = false;
          timer?.refresh();
          try {
            sink!.onBytes?.(next.bytes);
          } catch (error) {
            fail(error, 'keep');
          }
          pump();
          guarded(resume);
          settleIfIdle();
        },
        (error: unknown) => {
          writing = false;
          if (next.slot !== undefined) next.slot.busy = false;
          // Later batches would leave a hole after the failed one: the file must stay a prefix.
          queue.length = 0;
          writeError ??= storageError(error, 'write the download to disk');
          fail(writeError, 'keep');
          settleIfIdle();
        },
      );
    }

    function finish(): void {
      if (phase !== 'body') return;
      phase = 'done';
      end(undefined);
      submit(slots[current]);
    }

    function fail(error: unknown, partial: 'keep' | 'delete'): void {
      if (phase !== 'body') return;
      phase = 'failed';
      end(error);
      if (partial === 'delete') {
        queue.length = 0;
      } else {
        // Everything received so far is a valid continuation of the file: write it for the next attempt.
        try {
          for (const data of backlog) consume(data);
        } catch {
          // A tail past the expected size, or malformed, is simply not kept.
        }
        submit(slots[current]);
      }
      backlog = [];
      settleIfIdle();
    }

    function end(error: unknown): void {
      outcome = { error };
      disarm();
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      pause();
    }

    function settleIfIdle(): void {
      if (outcome === undefined || writing || queue.length > 0 || settleBody === undefined) return;
      const settle = settleBody;
      settleBody = undefined;
      settle(outcome.error ?? writeError);
    }

    function failHead(error: unknown): void {
      if (phase !== 'head') return;
      phase = 'failed';
      disarm();
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      rejectHead(error instanceof UpdateError ? error : networkError(error, url));
    }

    function onSocketError(error: unknown): void {
      if (phase === 'head') failHead(networkError(error, url));
      else if (phase === 'decide') socketError ??= error;
      else if (phase === 'body') fail(networkError(error, url), 'keep');
    }

    function onEof(): void {
      eof = true;
      if (phase === 'head') {
        failHead(new UpdateError('NETWORK_UNAVAILABLE', `${url.host} closed the connection before answering; check the connection and try again.`));
        return;
      }
      if (phase !== 'body' || paused) return; // seen again by resume() once the backlog is written
      try {
        if (parser.endOfInput()) finish();
        else fail(new UpdateError('NETWORK_UNAVAILABLE', `The connection to ${url.host} closed before the whole file arrived; the partial file is kept and the next attempt resumes it.`), 'keep');
      } catch (error) {
        fail(error, 'keep');
      }
    }

    function onStall(): void {
      const error = stalled(url, stallTimeoutMs);
      if (phase === 'head') failHead(error);
      else fail(error, 'keep');
    }
  });
}

function requestHead(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept-Encoding: identity\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

/** pwritev that finishes short writes, so a batch is either fully on disk or an error. */
async function writeAll(file: FileHandle, segments: Buffer[], position: number): Promise<void> {
  let pending = segments;
  let offset = position;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, offset);
    offset += bytesWritten;
    let skip = bytesWritten;
    let index = 0;
    while (index < pending.length && skip >= pending[index]!.length) skip -= pending[index++]!.length;
    pending = pending.slice(index);
    if (skip > 0 && pending.length > 0) pending[0] = pending[0]!.subarray(skip);
  }
}

// ---------------------------------------------------------------------------------------------------
// HTTP/1.1 response reading (RFC 9112), for the answer to a GET.

interface ResponseHead {
  status: number;
  statusText: string;
  headers: Record<string, string>;
}

/**
 * Splits the bytes of one response into its head and its body payload, whatever the read boundaries.
 *
 * @internal Exported for its tests only.
 * @example
 * const parser = new ResponseParser(url);
 * const start = parser.feedHead(bytes); // -1 until the head is complete
 * if (start >= 0) parser.feedBody(bytes.subarray(start), (payload) => chunks.push(payload));
 */
export class ResponseParser {
  head: ResponseHead | undefined;
  done = false;
  private partialHead: Buffer = Buffer.alloc(0);
  private framing: 'length' | 'chunked' | 'close' = 'close';
  private remaining = 0;
  private chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';

  constructor(private readonly url: URL) {}

  /**
   * Takes bytes until the final head is complete (1xx heads are skipped). Returns the index in `data`
   * where the body starts, or -1 when more bytes are needed; keeps its own copy of partial heads.
   */
  feedHead(data: Buffer): number {
    let input = data;
    let base = 0;
    for (;;) {
      const previous = this.partialHead.length;
      const window = input.subarray(0, MAX_HEAD_BYTES - previous + 4);
      const bytes = previous === 0 ? window : Buffer.concat([this.partialHead, window]);
      const end = findHeadEnd(bytes, Math.max(0, previous - 3));
      if (end < 0) {
        if (bytes.length >= MAX_HEAD_BYTES) throw this.malformed('the response head is larger than 64 KiB');
        this.partialHead = Buffer.from(bytes);
        return -1;
      }
      this.partialHead = Buffer.alloc(0);
      const consumed = end - previous;
      const head = this.parseHead(bytes.subarray(0, end).toString('latin1'));
      if (head.status >= 100 && head.status < 200) {
        if (head.status === 101) throw this.malformed('the server switched protocols');
        input = input.subarray(consumed);
        base += consumed;
        continue;
      }
      this.head = head;
      this.chooseFraming(head);
      return base + consumed;
    }
  }

  /** Passes each slice of body payload to `onPayload` (views into `data`, no copies). */
  feedBody(data: Buffer, onPayload: (payload: Buffer) => void): void {
    if (this.done || data.length === 0) return;
    if (this.framing === 'close') {
      onPayload(data);
      return;
    }
    if (this.framing === 'length') {
      const take = Math.min(this.remaining, data.length);
      this.remaining -= take;
      if (take > 0) onPayload(data.subarray(0, take));
      // Anything after the promised length is not this body; the connection is closed right after.
      if (this.remaining === 0) this.done = true;
      return;
    }
    let index = 0;
    while (index < data.length && !this.done) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.remaining, data.length - index);
        onPayload(data.subarray(index, index + take));
        index += take;
        this.remaining -= take;
        if (this.remaining === 0) this.chunkState = 'data-end';
        continue;
      }
      const newline = data.indexOf(0x0a, index);
      const stop = newline < 0 ? data.length : newline;
      this.line += data.toString('latin1', index, stop);
      if (this.line.length > 4096) throw this.malformed('a chunk header is longer than 4 KiB');
      index = stop;
      if (newline < 0) break;
      index += 1;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      this.onChunkLine(line);
    }
  }

  /** At the end of the connection: whether the body is complete (close-delimited bodies end here). */
  endOfInput(): boolean {
    if (this.head !== undefined && this.framing === 'close') this.done = true;
    return this.done;
  }

  private onChunkLine(line: string): void {
    if (this.chunkState === 'data-end') {
      if (line !== '') throw this.malformed('a chunk is longer than its announced size');
      this.chunkState = 'size';
    } else if (this.chunkState === 'size') {
      const size = /^([0-9a-fA-F]{1,13})[ \t]*(?:;.*)?$/.exec(line)?.[1];
      if (size === undefined) throw this.malformed(`bad chunk size line "${line.slice(0, 40)}"`);
      this.remaining = Number.parseInt(size, 16);
      this.chunkState = this.remaining === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      // The blank line after the (ignored) trailer fields ends the body.
      this.done = true;
    }
  }

  private parseHead(text: string): ResponseHead {
    const lines = text.split(/\r?\n/);
    const statusLine = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
    if (statusLine === null) throw this.malformed(`it is not an HTTP/1.x response ("${(lines[0] ?? '').slice(0, 40)}")`);
    const headers: Record<string, string> = {};
    let last: string | undefined;
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
        // Obsolete line folding: a continuation of the previous field.
        headers[last] += ` ${line.trim()}`;
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw this.malformed(`bad header line "${line.slice(0, 40)}"`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      last = name;
    }
    return { status: Number(statusLine[1]), statusText: statusLine[2] ?? '', headers };
  }

  private chooseFraming({ status, headers }: ResponseHead): void {
    if (status === 204 || status === 304) {
      this.done = true;
      return;
    }
    const transferEncoding = headers['transfer-encoding'];
    if (transferEncoding !== undefined) {
      const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim());
      this.framing = codings.at(-1) === 'chunked' ? 'chunked' : 'close';
      return;
    }
    const contentLength = headers['content-length'];
    if (contentLength !== undefined) {
      const values = new Set(contentLength.split(',').map((value) => value.trim()));
      const [value] = values;
      if (values.size !== 1 || value === undefined || !/^\d{1,15}$/.test(value)) throw this.malformed(`bad Content-Length "${contentLength}"`);
      this.framing = 'length';
      this.remaining = Number(value);
      if (this.remaining === 0) this.done = true;
    }
  }

  private malformed(what: string): UpdateError {
    return new UpdateError('DOWNLOAD_FAILED', `${this.url.host} sent a malformed HTTP response: ${what}. The server or a proxy in between is broken; tell the publisher.`);
  }
}

/** Index just past the blank line that ends a head (CRLF or bare LF line ends), or -1. */
function findHeadEnd(bytes: Buffer, from: number): number {
  for (let index = bytes.indexOf(0x0a, from); index >= 0; index = bytes.indexOf(0x0a, index + 1)) {
    if (bytes[index + 1] === 0x0a) return index + 2;
    if (bytes[index + 1] === 0x0d && bytes[index + 2] === 0x0a) return index + 3;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------
// Files, headers and errors.

async function hashPrefix(path: string, length: number, hash: Hash, signal: AbortSignal | undefined): Promise<number> {
  let read = 0;
  try {
    for await (const chunk of createReadStream(path, { start: 0, end: length - 1, highWaterMark: MIB })) {
      throwIfAborted(signal);
      hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    throw storageError(error, `read ${path}`);
  }
  return read;
}

async function fsyncFile(path: string): Promise<void> {
  await storage(async () => {
    // r+ because Windows only flushes handles opened for writing.
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }, `flush ${path} to disk`);
}

async function readMeta(path: string): Promise<PartMeta | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<PartMeta>;
    if (typeof value.expectedSize !== 'number') return undefined;
    return {
      expectedSize: value.expectedSize,
      ...(typeof value.etag === 'string' ? { etag: value.etag } : {}),
      ...(typeof value.lastModified === 'string' ? { lastModified: value.lastModified } : {}),
    };
  } catch {
    // A torn sidecar only costs the validator: the resume goes on without If-Range.
    return undefined;
  }
}

async function writeMeta(path: string, headers: Record<string, string>, expectedSize: number): Promise<void> {
  const meta: PartMeta = { expectedSize };
  // If-Range needs a strong validator; a weak ETag would make every resume start over.
  if (headers.etag !== undefined && !headers.etag.startsWith('W/')) meta.etag = headers.etag;
  if (headers['last-modified'] !== undefined) meta.lastModified = headers['last-modified'];
  await storage(() => writeFile(path, JSON.stringify(meta)), `write ${path}`);
}

async function discardPartial(partPath: string, metaPath: string): Promise<void> {
  await removeQuietly(partPath);
  await removeQuietly(metaPath);
}

async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

async function fileSize(path: string): Promise<number> {
  try {
    const stats = await stat(path);
    if (!stats.isFile()) {
      throw new UpdateError('STORAGE_FAILED', `${path} is not a regular file; remove it or choose another staging path.`);
    }
    return stats.size;
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw storageError(error, `read ${path}`);
  }
}

function contentRangeStart(headers: Record<string, string>): number | undefined {
  const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(headers['content-range'] ?? '');
  return match === null ? undefined : Number(match[1]);
}

/** The size the server claims for the whole file, when it says so. */
function declaredTotal(headers: Record<string, string>, status: number): number | undefined {
  if (status === 206) {
    const match = /\/(\d+)$/.exec(headers['content-range'] ?? '');
    return match === null ? undefined : Number(match[1]);
  }
  const length = headers['content-length'];
  return length === undefined || headers['transfer-encoding'] !== undefined || !/^\d+$/.test(length) ? undefined : Number(length);
}

/**
 * Retry-After as milliseconds from now: delta-seconds or an HTTP-date; undefined when absent or unparsable.
 *
 * @example
 * parseRetryAfter('7') // 7000
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseUrl(value: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `"${value}" is not an absolute URL; pass an http: or https: URL.` : `${base.href} redirected to "${value}", which is not a URL.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `${url.href} is not an http: or https: URL.` : `${base.href} redirected to ${url.href}, which is not http: or https:.`,
    );
  }
  return url;
}

function normalizeHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (error) {
      throw new UpdateError('INVALID_ARGUMENT', `Header ${JSON.stringify(name)} is not a valid HTTP header (${(error as Error).message}).`, { cause: error });
    }
    const key = name.toLowerCase();
    if (!RESERVED_HEADERS.has(key)) out[key] = value;
  }
  return out;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  for (const name of CREDENTIAL_HEADERS) delete out[name];
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}

function cancelled(): UpdateError {
  return new UpdateError('CANCELLED', 'The download was cancelled; the partial file is kept and the next attempt resumes it.');
}

function stalled(url: URL, ms: number): UpdateError {
  return new UpdateError('DOWNLOAD_STALLED', `${url.host} sent nothing for ${ms} ms; the partial file is kept and the next attempt resumes it.`);
}

function sizeMismatch(url: URL, what: string, expectedSize: number): UpdateError {
  return new UpdateError(
    'SIZE_MISMATCH',
    `The manifest says ${url.href} is ${expectedSize} bytes but ${what}; the partial file was deleted. The manifest or the server is out of date: check for updates again, or tell the publisher.`,
  );
}

function networkError(error: unknown, url: URL): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const reason = error instanceof Error ? error.message : String(error);
  if (TLS_CONFIG_ERRORS.test(code)) {
    return new UpdateError('DOWNLOAD_FAILED', `TLS with ${url.host} failed (${reason}); check the server's certificate or the URL.`, { cause: error });
  }
  return new UpdateError('NETWORK_UNAVAILABLE', `Could not download from ${url.host} (${reason}); check the connection. Any partial file is kept and the next attempt resumes it.`, { cause: error });
}

function storageError(error: unknown, what: string): UpdateError {
  if (error instanceof UpdateError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new UpdateError('INSUFFICIENT_DISK_SPACE', `Could not ${what}: the disk is full. Free some space and try again.`, { cause: error });
  }
  return new UpdateError('STORAGE_FAILED', `Could not ${what} (${reason}); check that the folder exists and is writable.`, { cause: error });
}

async function storage<T>(action: () => Promise<T>, what: string): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw storageError(error, what);
  }
}
