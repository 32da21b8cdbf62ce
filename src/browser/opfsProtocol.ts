/**
 * The messages between the page and the OPFS worker (opfsWorker.ts). Bytes travel as transferred
 * ArrayBuffers: a write hands its buffer to the worker and the reply hands it back for the next batch,
 * so nothing is copied between threads and the number of buffers out bounds the memory in flight.
 *
 * Every request has an `id`; the worker answers each with the same `id`, in order.
 */

/** A file in the Origin Private File System, as folder names from its root and a file name. */
export interface OpfsPath {
  dirs: string[];
  name: string;
}

export type OpfsRequest =
  /** Whether sync access handles work here (private modes and older browsers: no). */
  | { op: 'probe' }
  /** Whether `bytes` more fit in this site's storage, asked of the browser by growing a scratch file. */
  | { op: 'room'; bytes: number; scratch: OpfsPath }
  /** Opens `path` for writing in order from `position` (cut there first); hashing goes on from `state`. */
  | { op: 'open'; handle: number; path: OpfsPath; position: number; state: Uint8Array | null; hashing: boolean }
  /** Opens `path` for writes at any offset, sized to `size`. */
  | { op: 'openRandom'; handle: number; path: OpfsPath; size: number }
  /** Writes `length` bytes of `buffer` at the handle's position (or at `at`), hashing the first `hashed` of them. */
  | { op: 'write'; handle: number; buffer: ArrayBuffer; length: number; hashed: number; at?: number }
  /** Hashes bytes that are not written (a caller that hashed more than it wrote). */
  | { op: 'hash'; handle: number; buffer: ArrayBuffer; length: number }
  | { op: 'read'; handle: number; at: number; length: number }
  /** Flushes when `sync`, closes the handle, and answers the digest when it hashed. */
  | { op: 'close'; handle: number; sync: boolean }
  /** SHA-256 of the first `length` bytes of `path`, read from the file (no saved state reached that far). */
  | { op: 'hashFile'; path: OpfsPath; length: number };

export type OpfsRequestWithId = OpfsRequest & { id: number };

export type OpfsReply =
  | { id: number; ok: true; value?: unknown; buffer?: ArrayBuffer; state?: Uint8Array; end?: number }
  | { id: number; ok: false; name: string; message: string };

/** What `write` answers: the buffer back, and the hash state after the bytes so far when it hashes. */
export interface WriteResult {
  buffer: ArrayBuffer;
  end: number;
  state?: Uint8Array;
}

/** What `close` answers. */
export interface CloseResult {
  size: number;
  digest?: string;
  state?: Uint8Array;
}
