/**
 * The fast transport for one GET: HTTP/1.1 written on a net / tls socket that reads into one reused
 * 1 MiB buffer (the `onread` option), the body framed by its Content-Length.
 *
 * Why: node:http hands every body segment to JavaScript in a freshly allocated copy, about 16,000 of
 * them per GiB. Reading into one buffer, up to 1 MiB per read, halves the CPU the transfer costs
 * and leaves nothing for the garbage collector (bench/download.ts; the figures are in the README).
 *
 * Narrow on purpose: it sends a plain GET and reads a plain response head (responseHead.ts) with a
 * Content-Length body. Anything else (chunked or close-delimited bodies, interim 1xx responses, a
 * head it finds unusual) resolves `undefined`: the connection is dropped and the transport repeats the
 * request over node:http (nodeHttpExchange.ts), which handles every form.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { BodySink } from '../core/ports/transport.js';
import { closedBeforeHead, closedEarly, ExchangeControl, type Exchange, type ExchangeOptions } from './exchange.js';
import { connectExchange, proxyRefusal, type ProxiedConnection } from './proxy.js';
import { headEnd, MAX_HEAD_BYTES, parseResponseHead, type ResponseHead } from './responseHead.js';

const READ_BYTES = 1024 * 1024;
/** The smallest read a sink may ask for (BodySink.readBytes), and the reads of the head. */
const MIN_READ_BYTES = 16 * 1024;
/**
 * Read buffers of closed sockets, taken by the next exchange: a download by ranges sends a request
 * per part, and a fresh 1 MiB each stays allocated until the garbage collector gets to it (measured:
 * about 15 MB more peak RSS over a 256 MiB file in 16 MiB parts).
 */
const spareReadBuffers: Buffer[] = [];
const MAX_SPARE_READ_BUFFERS = 4;

/**
 * Sends the GET and resolves once the response head is in, with the body paused so the caller can
 * decide what to do with it; undefined when the response is not one this transport reads. Rejects
 * if no head arrives.
 */
export async function openDirectExchange(url: URL, headers: Record<string, string>, options: ExchangeOptions): Promise<Exchange | undefined> {
  // Through a proxy, the connection (a CONNECT tunnel for https) is set up first; undefined: direct.
  const connecting = connectExchange(url, options);
  const proxied = connecting && (await connecting);
  return new Promise<Exchange | undefined>((resolveHead, rejectHead) => {
    /** head: reading the head; waiting: head given to the caller, body paused; body: streaming; done. */
    let phase: 'head' | 'waiting' | 'body' | 'done' = 'head';
    let pending = Buffer.alloc(0); // head bytes so far, then the body bytes that came with the head
    let remaining = 0; // body bytes still to come
    let ended = false; // the peer closed its side
    let sink: BodySink | undefined;
    let resolveBody: (() => void) | undefined;

    const onRead = (bytes: Buffer): boolean => {
      switch (phase) {
        case 'head':
          pending = Buffer.concat([pending, bytes]);
          return readHead();
        case 'waiting':
          pending = Buffer.concat([pending, bytes]);
          return false;
        case 'body':
          return readBody(bytes);
        case 'done':
          return false;
      }
    };

    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const readBuffer = spareReadBuffers.pop() ?? Buffer.allocUnsafe(READ_BYTES);
    const onread = {
      // Asked for the next read after each one: a sink that wants smaller pieces (a bandwidth cap) gets a shorter view of the same buffer.
      // Until the body is handed to a sink (whose wish is not known yet), small reads: the head is small.
      buffer: () => {
        if (phase !== 'body') return readBuffer.subarray(0, MIN_READ_BYTES);
        const wanted = sink?.readBytes?.();
        return wanted !== undefined && wanted < READ_BYTES ? readBuffer.subarray(0, Math.max(MIN_READ_BYTES, Math.floor(wanted))) : readBuffer;
      },
      callback: (length: number, buffer: Uint8Array) => onRead((buffer as Buffer).subarray(0, length)),
    };
    const socket =
      proxied !== undefined
        ? proxied.socket
        : url.protocol === 'https:'
        ? tls.connect({
            host: hostname,
            port: Number(url.port || 443),
            ...(net.isIP(hostname) ? {} : { servername: hostname }),
            ...(options.ca === undefined ? {} : { ca: options.ca }),
            ALPNProtocols: ['http/1.1'],
            // tls takes `onread` as net does (since Node 15); @types/node 20 only declares it for net.
            ...({ onread } as tls.ConnectionOptions),
          })
        : net.connect({ host: hostname, port: Number(url.port || 80), onread });
    const control = new ExchangeControl(options, () => socket.destroy(), rejectHead);
    // `onread` applies only to a socket created with it; a proxied one delivers its bytes as 'data'.
    if (proxied !== undefined) {
      socket.on('data', (bytes: Buffer) => {
        if (!onRead(bytes)) socket.pause();
      });
    }
    socket.on('error', (error) => control.fail(error));
    const onClosed = (): void => {
      ended = true;
      if (phase === 'head') control.fail(closedBeforeHead());
      else if (phase === 'body') control.fail(closedEarly());
    };
    socket.on('end', onClosed);
    socket.on('close', onClosed);
    // Closed: no read comes into its buffer any more.
    socket.once('close', () => {
      if (proxied === undefined && spareReadBuffers.length < MAX_SPARE_READ_BUFFERS) spareReadBuffers.push(readBuffer);
    });
    socket.write(requestHead(url, headers, proxied), 'latin1');

    /** Waits for the whole head, then hands the exchange to the caller and pauses. */
    function readHead(): boolean {
      const end = headEnd(pending);
      if (end < 0) return pending.length <= MAX_HEAD_BYTES || decline();
      const head = parseResponseHead(pending.toString('latin1', 0, end));
      if (head === undefined || head.status < 200) return decline();
      const refusal = proxyRefusal(proxied, url, head.status);
      if (refusal !== undefined) {
        control.fail(refusal);
        return false;
      }
      const length = bodyLength(head);
      if (length === undefined) return decline();
      pending = Buffer.from(pending.subarray(end));
      remaining = length;
      phase = 'waiting';
      resolveHead({ ...head, close: () => control.close(), resume: () => socket.resume(), receive: (bodySink) => receive(head, bodySink) });
      return false;
    }

    /** Not a response this transport reads: drop the connection; the caller asks node:http instead. */
    function decline(): false {
      phase = 'done';
      control.close();
      resolveHead(undefined);
      return false;
    }

    function receive(head: ResponseHead, bodySink: BodySink): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        control.waitWith(reject);
        if (control.failure) return;
        if (head.status !== 200 && head.status !== 206) return reject(new Error(`a ${head.status} response has no file to receive`));
        sink = bodySink;
        resolveBody = resolve;
        phase = 'body';
        const early = pending;
        pending = Buffer.alloc(0);
        // The body bytes read with the head, in the pieces the sink asks for (they are read: all are handed on).
        const wanted = bodySink.readBytes?.();
        const step = wanted === undefined ? Math.max(1, early.length) : Math.max(MIN_READ_BYTES, Math.floor(wanted));
        let more = readBody(early.subarray(0, step));
        for (let at = step; at < early.length && phase === 'body' && !control.failure; at += step) more = readBody(early.subarray(at, at + step)) && more;
        if (phase === 'body') {
          if (ended) control.fail(closedEarly());
          else if (more) socket.resume();
        }
      });
    }

    /** Takes body bytes up to the Content-Length; anything after it is not this response's. */
    function readBody(bytes: Buffer): boolean {
      const taken = bytes.subarray(0, Math.min(bytes.length, remaining));
      remaining -= taken.length;
      const more = taken.length === 0 || sink!.write(taken);
      if (control.failure) return false;
      if (remaining > 0) return more;
      phase = 'done';
      control.settle();
      socket.destroy();
      resolveBody!();
      return false;
    }
  });
}

/** The request head: the caller's headers were validated (download/requestHeaders.ts). */
function requestHead(url: URL, headers: Record<string, string>, proxied: ProxiedConnection | undefined): string {
  const lines = [`GET ${proxied?.target ?? `${url.pathname}${url.search}`} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries({ ...headers, ...proxied?.headers })) lines.push(`${name}: ${value}`);
  lines.push('accept-encoding: identity', 'connection: close', '', '');
  return lines.join('\r\n');
}

/** The body's length for a 200 or 206 framed by Content-Length; 0 for statuses whose body is not read. */
function bodyLength(head: ResponseHead): number | undefined {
  if (head.status !== 200 && head.status !== 206) return 0;
  const { 'content-length': length, 'transfer-encoding': encoding } = head.headers;
  if (encoding !== undefined || length === undefined || !/^\d{1,15}$/.test(length)) return undefined;
  return Number(length);
}
