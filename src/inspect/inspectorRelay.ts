/**
 * A local inspector server that keeps every inspection event it is sent and hands all of them, in the
 * order they came, to each page that connects, however late. `createInspectorServer` from
 * `@statelyai/inspect/server` keeps only the last 200: for any real log the first event, the one that
 * carries the chart's definition, is gone before the page connects, and the chart cannot be drawn.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { platform } from 'node:os';
import { WebSocket, WebSocketServer } from 'ws';
import { UpdateError } from '../core/errors.js';

/** The Stately inspector web app, which the served page embeds. */
export const STATELY_INSPECTOR_URL = 'https://stately.ai/inspect';

export interface InspectorRelayOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Default '127.0.0.1': the events describe a user's machine, so nothing else should read them. */
  host?: string;
  /** The inspector app the page embeds. Default the Stately inspector. */
  inspectorUrl?: string;
  /** Open the page in the default browser once listening. Default false. */
  open?: boolean;
}

export interface InspectorRelay {
  /** Where producers (`connectWebSocketInspector`) and pages connect: `ws://host:port`. */
  readonly url: string;
  /** The page that shows the inspector: `http://host:port`. */
  readonly pageUrl: string;
  /** Inspection events kept so far (all of them). */
  readonly events: number;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts the relay. Every message a client sends is kept and passed on to the other clients; a client
 * that connects first receives everything kept, in order (so the root actor's event, which carries the
 * definition, comes first), then what arrives after.
 * @example
 * const relay = await startInspectorRelay({ port: 8080, open: true })
 * const inspector = await connectWebSocketInspector(relay.url)
 * replayIntoInspector(readAllRecords(dir), inspector.inspect)
 */
export async function startInspectorRelay({ port = 8080, host = '127.0.0.1', inspectorUrl = STATELY_INSPECTOR_URL, open = false }: InspectorRelayOptions = {}): Promise<InspectorRelay> {
  const kept: string[] = [];
  const httpServer = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(bridgePage(inspectorUrl));
  });
  const sockets = new WebSocketServer({ server: httpServer, verifyClient: ({ origin, req }: { origin?: string; req: http.IncomingMessage }) => allowedOrigin(origin, req.headers.host) });
  // ws re-emits the HTTP server's errors (a taken port) here; the listen below reports them.
  sockets.on('error', () => undefined);
  sockets.on('connection', (socket) => {
    // Synchronous, so nothing that arrives meanwhile can slip in between the history and the live events.
    for (const message of kept) socket.send(message);
    socket.on('message', (data) => {
      const message = data.toString();
      kept.push(message);
      for (const client of sockets.clients) if (client !== socket && client.readyState === WebSocket.OPEN) client.send(message);
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be used (${error.message})`;
      reject(new UpdateError('INVALID_ARGUMENT', `Port ${port} ${reason}; serve the inspector on another one with --port.`, { cause: error }));
    });
    httpServer.listen(port, host, () => resolve());
  });
  const address = httpServer.address() as AddressInfo;
  const authority = `${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  const wsUrl = `ws://${authority}`;
  const pageUrl = `http://${authority}`;
  if (open) openInBrowser(pageUrl);
  return {
    url: wsUrl,
    pageUrl,
    get events() {
      return kept.length;
    },
    async close() {
      for (const client of sockets.clients) client.terminate();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/**
 * Browsers let any web page open a WebSocket to 127.0.0.1, so a site open in the same browser could read
 * the log's events: only the relay's own page (same origin, reached by a loopback name, so not through
 * DNS rebinding) and clients that are not browsers (no Origin, e.g. connectWebSocketInspector) get in.
 */
export function allowedOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin) return true;
  if (!host || origin !== `http://${host}`) return false;
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127(\.\d{1,3}){3}$/.test(name);
}

function openInBrowser(url: string): void {
  const command = platform() === 'darwin' ? 'open' : platform() === 'win32' ? 'explorer' : 'xdg-open';
  // A machine without a browser (a remote box) just does not open one: the URL is printed anyway.
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}

/**
 * The page: the inspector app in an iframe, fed over `postMessage` with every event from the relay it
 * was served by (whatever port forwarding put in between). Events that arrive before the app says it
 * is ready are held (all of them), then delivered in order.
 */
export function bridgePage(inspectorUrl: string): string {
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>model-updater inspector</title>
<style>html, body { height: 100%; margin: 0 } iframe { width: 100%; height: 100%; border: 0 }</style>
</head>
<body>
<iframe id="inspector" src=${JSON.stringify(inspectorUrl)}></iframe>
<script>
const frame = document.getElementById('inspector');
const held = [];
let ready = false;
window.addEventListener('message', (message) => {
  if (!message.data || message.data.type !== '@statelyai.connected') return;
  ready = true;
  for (const event of held.splice(0)) frame.contentWindow.postMessage(event, '*');
});
const socket = new WebSocket('ws://' + location.host);
socket.onmessage = (message) => {
  const event = JSON.parse(message.data);
  if (ready) frame.contentWindow.postMessage(event, '*');
  else held.push(event);
};
</script>
</body>
</html>`;
}
