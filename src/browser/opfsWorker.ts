/**
 * The OPFS worker: a dedicated worker that writes model bytes into the Origin Private File System
 * through sync access handles (`createSyncAccessHandle()`, workers only) and hashes them with hash-wasm
 * as they arrive, so neither the writes nor the SHA-256 run on the page's thread. It is bundled with
 * hash-wasm into one script at build time (scripts/bundleBrowserWorker.ts) and started from a Blob URL.
 * Requests are served one at a time, in order (opfsProtocol.ts).
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import type { OpfsPath, OpfsRequestWithId } from './opfsProtocol.js';

/** The parts of FileSystemSyncAccessHandle used here (TypeScript's DOM library does not declare it). */
interface SyncAccessHandle {
  read(buffer: ArrayBufferView, options?: { at: number }): number;
  write(buffer: ArrayBufferView, options?: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
type SyncFileHandle = FileSystemFileHandle & { createSyncAccessHandle(): Promise<SyncAccessHandle> };

interface OpenFile {
  sync: SyncAccessHandle;
  position: number;
  hasher: IHasher | undefined;
  /** The first write error: later writes of an in-order file would land at the wrong offset. */
  broken?: unknown;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent<OpfsRequestWithId>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}
const scope = globalThis as unknown as WorkerScope;
const files = new Map<number, OpenFile>();

async function folder(dirs: string[]): Promise<FileSystemDirectoryHandle> {
  let dir = await navigator.storage.getDirectory();
  for (const name of dirs) dir = await dir.getDirectoryHandle(name, { create: true });
  return dir;
}

async function openSync(path: OpfsPath): Promise<SyncAccessHandle> {
  const file = (await (await folder(path.dirs)).getFileHandle(path.name, { create: true })) as SyncFileHandle;
  return file.createSyncAccessHandle();
}

function opened(handle: number): OpenFile {
  const file = files.get(handle);
  if (!file) throw new DOMException(`No open file ${handle} in the OPFS worker`, 'InvalidStateError');
  return file;
}

async function hasher(state: Uint8Array | null): Promise<IHasher> {
  const sha = await createSHA256();
  sha.init();
  if (state) sha.load(state);
  return sha;
}

/** Writes all of `bytes` at `at` (a sync handle may write fewer bytes than asked). */
function writeAll(sync: SyncAccessHandle, bytes: Uint8Array, at: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = sync.write(bytes.subarray(done), { at: at + done });
    if (n <= 0) throw new DOMException('The browser wrote nothing', 'QuotaExceededError');
    done += n;
  }
}

type Answer = { value?: unknown; buffer?: ArrayBuffer; state?: Uint8Array; end?: number };

async function serve(request: OpfsRequestWithId): Promise<Answer> {
  switch (request.op) {
    case 'probe': {
      const proto = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle?.prototype;
      if (!proto || !('createSyncAccessHandle' in proto)) return { value: 'no sync access handles in this browser' };
      await navigator.storage.getDirectory();
      return { value: null };
    }
    case 'room': {
      const sync = await openSync(request.scratch);
      try {
        sync.truncate(request.bytes);
        return { value: true };
      } catch (error) {
        if ((error as DOMException).name === 'QuotaExceededError') return { value: false };
        throw error;
      } finally {
        sync.truncate(0);
        sync.close();
        await (await folder(request.scratch.dirs)).removeEntry(request.scratch.name).catch(() => undefined);
      }
    }
    case 'open': {
      const sync = await openSync(request.path);
      if (sync.getSize() !== request.position) sync.truncate(request.position);
      files.set(request.handle, { sync, position: request.position, hasher: request.hashing ? await hasher(request.state) : undefined });
      return {};
    }
    case 'openRandom': {
      const sync = await openSync(request.path);
      if (sync.getSize() !== request.size) sync.truncate(request.size);
      files.set(request.handle, { sync, position: 0, hasher: undefined });
      return {};
    }
    case 'write': {
      const file = opened(request.handle);
      if (file.broken) throw file.broken;
      const bytes = new Uint8Array(request.buffer, 0, request.length);
      const at = request.at ?? file.position;
      try {
        writeAll(file.sync, bytes, at);
      } catch (error) {
        if (request.at === undefined) file.broken = error;
        throw error;
      }
      if (request.at === undefined) file.position += request.length;
      if (file.hasher && request.hashed > 0) file.hasher.update(bytes.subarray(0, request.hashed));
      return { buffer: request.buffer, end: file.position, ...(file.hasher ? { state: file.hasher.save() } : {}) };
    }
    case 'hash': {
      opened(request.handle).hasher?.update(new Uint8Array(request.buffer, 0, request.length));
      return {};
    }
    case 'read': {
      const file = opened(request.handle);
      const buffer = new ArrayBuffer(request.length);
      const n = file.sync.read(new Uint8Array(buffer), { at: request.at });
      return { buffer: n === request.length ? buffer : buffer.slice(0, n) };
    }
    case 'close': {
      const file = files.get(request.handle);
      if (!file) return {};
      files.delete(request.handle);
      try {
        if (request.sync) file.sync.flush();
        const size = file.sync.getSize();
        return { value: { size, ...(file.hasher ? { digest: file.hasher.digest('hex') } : {}) } };
      } finally {
        file.sync.close();
      }
    }
    case 'hashFile': {
      const sha = await hasher(null);
      const blob = (await (await (await folder(request.path.dirs)).getFileHandle(request.path.name)).getFile()).slice(0, request.length);
      const reader = blob.stream().getReader();
      let end = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        sha.update(value);
        end += value.byteLength;
      }
      return { state: sha.save(), end, value: sha.digest('hex') };
    }
  }
}

let queue = Promise.resolve();
scope.onmessage = (event) => {
  const request = event.data;
  queue = queue.then(async () => {
    try {
      const answer = await serve(request);
      scope.postMessage({ id: request.id, ok: true, ...answer }, answer.buffer ? [answer.buffer] : []);
    } catch (error) {
      const failure = error as DOMException;
      scope.postMessage({ id: request.id, ok: false, name: failure?.name ?? 'Error', message: failure?.message ?? String(error) });
    }
  });
};
