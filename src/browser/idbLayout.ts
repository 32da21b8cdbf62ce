/**
 * Where the browser runtime keeps things in IndexedDB, through idb-keyval's custom stores. idb-keyval
 * opens one object store per database, so each kind of data has its own database:
 *
 *   <prefix>:files   ['b', sha256]                Blob: file content, stored once however many versions share it
 *                    ['v', version, path]         sha256 of that file of an installed version
 *                    ['s', version, path, index]  StagedChunk: one piece of a download in progress
 *                    ['s', version, path, 'record']  ResumeRecord of that download (after the numbered chunks)
 *                    ['c', '<sha256>.<sizes>']   Uint8Array: cached chunk index of that content (differential downloads)
 *   <prefix>:meta    'pointer'                    ActivePointer, the commit point of an update
 *   <prefix>:log     seq (0, 1, 2, ...)           LogRecord, one key per record
 */
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';

/** One persisted piece of a partial download; the hasher state makes a resume need no re-hash. */
export interface StagedChunk {
  blob: Blob;
  /** Offset in the file just after this chunk. */
  end: number;
  /** hash-wasm SHA-256 state after hashing the file up to `end`. */
  state: Uint8Array;
  /** Unused since the resume record has its own key; kept so older chunks still read. */
  validator?: string | null;
}

export interface IdbDatabases {
  files: UseStore;
  meta: UseStore;
  log: UseStore;
  prefix: string;
}

/** The databases of one updater, named `model-updater:<name>:files|meta|log`. */
export function openDatabases(name: string): IdbDatabases {
  const prefix = `model-updater:${name}`;
  return {
    prefix,
    files: createStore(`${prefix}:files`, 'files'),
    meta: createStore(`${prefix}:meta`, 'meta'),
    log: createStore(`${prefix}:log`, 'records'),
  };
}

/** Every key that starts with `prefix` (arrays sort after strings and numbers, so `[...prefix, []]` bounds them). */
export function prefixRange(prefix: IDBValidKey[]): IDBKeyRange {
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

export function getAllInRange<T>(store: UseStore, range: IDBKeyRange): Promise<T[]> {
  return store('readonly', (s) => promisifyRequest(s.getAll(range) as IDBRequest<T[]>));
}

export function getAllKeysInRange(store: UseStore, range: IDBKeyRange): Promise<IDBValidKey[]> {
  return store('readonly', (s) => promisifyRequest(s.getAllKeys(range)));
}

export function deleteRange(store: UseStore, range: IDBKeyRange): Promise<void> {
  return store('readwrite', (s) => {
    s.delete(range);
    return promisifyRequest(s.transaction);
  });
}
