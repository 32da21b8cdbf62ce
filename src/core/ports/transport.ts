/**
 * The network port of a model download: one GET, as the platform makes it. Node sends it over its own
 * socket (node/nodeTransport.ts), a browser with `fetch` (browser/fetchTransport.ts), the simulator to
 * its in-memory update service (testing/memoryTransport.ts). Everything HTTP means for a download
 * (redirects, ranges, validators, sizes, guards, errors) is decided once, in download/downloadFile.ts.
 */

export interface TransportRequest {
  /** Absolute http: or https: URL. */
  url: URL;
  /** Lowercase names; validated by the caller (a range and its validator, If-None-Match, Authorization, ...). */
  headers: Record<string, string>;
  /** Aborting drops the connection: a pending `get` or `receive` rejects. */
  signal: AbortSignal;
}

/**
 * Where a response body goes. Bytes are pushed as they arrive; the transport owns the buffer, so the
 * sink copies what it keeps before returning (Node reads every chunk into one reused buffer).
 */
export interface BodySink {
  /** Takes the next bytes. False: the transport stops reading until `TransportResponse.resume()`. */
  write(bytes: Uint8Array): boolean;
  /**
   * The most bytes the sink wants in one piece, asked before each read; undefined: the transport's
   * own size. A transport reading into its own buffer reads no more at once. A sink under a bandwidth
   * cap asks for small pieces, so what it lets in follows the cap closely rather than a megabyte at a time.
   */
  readBytes?(): number | undefined;
}

export interface TransportResponse {
  status: number;
  statusText: string;
  /** Lowercase names; a repeated field's values joined with ', '. */
  headers: Record<string, string>;
  /**
   * Pushes the body into `sink`; resolves when the body ended as its framing says (Content-Length,
   * chunked end, or the close of a close-delimited body). Rejects with the transport's own error when
   * the connection fails or closes early, or when the request's signal aborts. Called at most once.
   */
  receive(sink: BodySink): Promise<void>;
  /** Restarts a body the sink paused. */
  resume(): void;
  /** Drops the connection, body unread. Idempotent. */
  close(): void;
}

export interface Transport {
  /**
   * Sends the GET and resolves once the response head is in (redirects are not followed: the caller
   * decides). Rejects with the transport's own error when no head arrives.
   * @example
   * const response = await transport.get({ url: new URL(href), headers: { range: 'bytes=100-' }, signal })
   * if (response.status === 206) await response.receive({ write: (bytes) => staged.write(bytes) })
   */
  get(request: TransportRequest): Promise<TransportResponse>;
}
