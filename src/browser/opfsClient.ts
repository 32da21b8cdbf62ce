/**
 * The page's side of the OPFS worker: starts it from its bundled script (a Blob URL) and sends it
 * requests (opfsProtocol.ts), each answered by a promise. Buffers are transferred, never copied.
 */
import { OPFS_WORKER_SOURCE } from './opfsWorkerSource.js';
import type { OpfsReply, OpfsRequest } from './opfsProtocol.js';

/** Where the OPFS worker's script comes from: its text, or a URL a host serves it at (a CSP without `blob:`). */
export type OpfsWorkerScript = { source: string } | { url: string | URL };

/** A failure the worker reported, rebuilt as the DOMException it threw there. */
function rebuilt(reply: Extract<OpfsReply, { ok: false }>): Error {
  return typeof DOMException === 'function' ? new DOMException(reply.message, reply.name) : Object.assign(new Error(reply.message), { name: reply.name });
}

export class OpfsClient {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: Extract<OpfsReply, { ok: true }>) => void; reject: (error: unknown) => void }>();
  private broken: unknown;

  private constructor(private readonly worker: Worker) {
    worker.onmessage = (event: MessageEvent<OpfsReply>) => {
      const reply = event.data;
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(rebuilt(reply));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(new Error(`The OPFS worker failed: ${event.message || 'it could not be started'}`));
    };
  }

  /**
   * Starts the worker and asks whether sync access handles work here; resolves with the client, or
   * with the reason OPFS cannot be used (then the store keeps its files in IndexedDB).
   * @example
   * const started = await OpfsClient.start({ source: OPFS_WORKER_SOURCE })
   * if (typeof started === 'string') console.log(`IndexedDB: ${started}`)
   */
  static async start(script?: OpfsWorkerScript): Promise<OpfsClient | string> {
    if (typeof Worker !== 'function') return 'this page cannot start workers';
    if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return 'this browser has no Origin Private File System';
    const chosen = script ?? (OPFS_WORKER_SOURCE === undefined ? undefined : { source: OPFS_WORKER_SOURCE });
    if (!chosen) return 'the OPFS worker script is not in this bundle (see scripts/bundleBrowserWorker.ts)';
    let url: string;
    let revoke = false;
    if ('source' in chosen) {
      url = URL.createObjectURL(new Blob([chosen.source], { type: 'text/javascript' }));
      revoke = true;
    } else {
      url = String(chosen.url);
    }
    let worker: Worker;
    try {
      worker = new Worker(url, { name: 'model-updater-opfs' });
    } catch (error) {
      if (revoke) URL.revokeObjectURL(url);
      return `the OPFS worker could not be started (${(error as Error).message})`;
    }
    const client = new OpfsClient(worker);
    try {
      const reason = (await client.request({ op: 'probe' }).finally(() => revoke && URL.revokeObjectURL(url))).value as string | null;
      if (reason === null) return client;
      client.terminate();
      return reason;
    } catch (error) {
      client.terminate();
      return `the Origin Private File System is not available (${(error as Error).message})`;
    }
  }

  /** Sends one request (its buffers transferred) and resolves with the worker's answer. */
  request(request: OpfsRequest, transfer: Transferable[] = []): Promise<Extract<OpfsReply, { ok: true }>> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  terminate(): void {
    this.worker.terminate();
    this.fail(new Error('The OPFS worker was stopped'));
  }

  private fail(error: unknown): void {
    this.broken ??= error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
