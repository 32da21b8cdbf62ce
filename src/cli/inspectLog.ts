/**
 * `model-updater log --inspect [ws-url]`: replays an event log into the Stately inspector.
 */
import { createServer } from 'node:net';
import { createInspectorServer } from '@statelyai/inspect/server';
import { UpdateError } from '../core/errors.js';
import { replayIntoInspector } from '../inspect/replayIntoInspector.js';
import { connectWebSocketInspector } from '../inspect/webSocketInspector.js';
import type { LogRecord } from '../core/log/record.js';
import { statePath } from '../core/statePath.js';
import type { CliOutput } from './output.js';

/** Lets `--inspect` stand alone (serve an inspector) or take a URL, which node:util's parseArgs cannot. */
export function normalizeInspectFlag(argv: string[]): string[] {
  return argv.map((arg, index) => (arg === '--inspect' && (argv[index + 1] === undefined || argv[index + 1]!.startsWith('--')) ? '--inspect=' : arg));
}

export interface InspectTarget {
  /** An inspector server's WebSocket URL; empty: serve one here. */
  url: string;
  /** Where to serve one (url empty). */
  port: number;
  /** Open the served inspector in the default browser. */
  open: boolean;
}

/** Sends the replay to `url`, or with an empty url serves an inspector on `port` and keeps it up until Ctrl-C. */
export async function inspectLog(records: readonly LogRecord[], { url, port, open }: InspectTarget, output: CliOutput): Promise<number> {
  // The inspector server has no error handler of its own: a taken port would crash the process.
  if (url === '') await assertPortFree(port);
  const server = url === '' ? createInspectorServer({ port, autoOpen: open }) : undefined;
  try {
    const inspector = await connectWebSocketInspector(url || `ws://localhost:${port}`);
    const snapshot = replayIntoInspector(records, inspector.inspect);
    await inspector.close();
    const state = snapshot ? statePath(snapshot) : null;
    output.result({ ok: true, records: records.length, events: inspector.sent, state }, [
      `replayed ${records.length} records (${inspector.sent} inspection events) into ${url || `the inspector at http://localhost:${port}`}; final state ${state ?? 'none'}`,
    ]);
  } catch (error) {
    server?.stop();
    throw error;
  }
  if (!server) return 0;
  process.stderr.write('The inspector page keeps the last 200 events. Press Ctrl-C to stop serving it.\n');
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  server.stop();
  return 0;
}

async function assertPortFree(port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be used (${error.message})`;
      reject(new UpdateError('INVALID_ARGUMENT', `Port ${port} ${reason}; serve the inspector on another one with --port.`, { cause: error }));
    });
    probe.listen(port, () => probe.close(() => resolve()));
  });
}
