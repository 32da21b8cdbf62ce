/**
 * Sends inspection events to a Stately inspector server over a WebSocket (Node). Unlike
 * `createWebSocketInspector` from @statelyai/inspect, it fails at once when nothing listens (that one
 * retries every 5 s forever) and it can be closed, so a command or a test ends cleanly.
 */
import { createInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';
import WebSocket from 'ws';
import { UpdateError } from '../core/errors.js';

export interface WebSocketInspector {
  inspect: Observer<InspectionEvent>;
  /** Inspection events sent so far. */
  readonly sent: number;
  /** Delivers what the inspector still holds, then closes the socket. */
  close(): Promise<void>;
}

/** Resolves after the inspector's own deferred deliveries (it queues each event with setTimeout 0 in Node). */
const afterQueuedDeliveries = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Connects to an inspector server, e.g. one started with `startInspectorRelay()`, which shows the
 * events in the Stately inspector in a browser.
 * @example
 * const inspector = await connectWebSocketInspector('ws://localhost:8080')
 * const updater = createModelUpdater({ ...options, inspect: inspector.inspect })
 */
export async function connectWebSocketInspector(url: string): Promise<WebSocketInspector> {
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', (error) =>
      reject(
        new UpdateError(
          'NETWORK_UNAVAILABLE',
          `No inspector server answered at ${url} (${error.message}). Start one (\`model-updater log --dir <dir> --inspect\` serves one on port 8080, or startInspectorRelay() from model-updater/inspect), then try again.`,
          { cause: error },
        ),
      ),
    );
  });
  let sent = 0;
  const inspector = createInspector({
    send(event) {
      sent += 1;
      socket.send(JSON.stringify(event));
    },
  });
  return {
    inspect: inspector.inspect,
    get sent() {
      return sent;
    },
    async close() {
      await afterQueuedDeliveries();
      if (socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(); // queued frames go out before the close frame
      });
    },
  };
}
