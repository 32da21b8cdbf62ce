/**
 * The baseline of bench/browser.ts, as an app would write it by hand: a dedicated worker that takes
 * transferred network chunks, writes them through an OPFS sync access handle and hashes them with
 * hash-wasm. Bundled into a Blob URL by the benchmark.
 */
import { createSHA256, type IHasher } from 'hash-wasm';

interface SyncAccessHandle {
  write(buffer: ArrayBufferView, options?: { at: number }): number;
  flush(): void;
  close(): void;
}

const scope = globalThis as unknown as { onmessage: (event: MessageEvent) => void; postMessage(message: unknown): void };
let handle: SyncAccessHandle | undefined;
let hasher: IHasher | undefined;
let position = 0;
let queue = Promise.resolve();

scope.onmessage = (event) => {
  const message = event.data as { op: 'open'; name: string } | { op: 'chunk'; buffer: ArrayBuffer; offset: number; length: number } | { op: 'end' };
  queue = queue.then(async () => {
    if (message.op === 'open') {
      const root = await navigator.storage.getDirectory();
      const file = (await root.getFileHandle(message.name, { create: true })) as FileSystemFileHandle & { createSyncAccessHandle(): Promise<SyncAccessHandle> };
      handle = await file.createSyncAccessHandle();
      hasher = await createSHA256();
      hasher.init();
      position = 0;
      scope.postMessage({ opened: true });
    } else if (message.op === 'chunk') {
      const bytes = new Uint8Array(message.buffer, message.offset, message.length);
      position += handle!.write(bytes, { at: position });
      hasher!.update(bytes);
    } else {
      handle!.flush();
      handle!.close();
      scope.postMessage({ digest: hasher!.digest('hex'), size: position });
    }
  });
};
