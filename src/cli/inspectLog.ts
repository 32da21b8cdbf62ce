/**
 * `model-updater log --inspect [ws-url]`: replays an event log into the Stately inspector.
 */
import { replayIntoInspector } from '../inspect/replayIntoInspector.js';
import { connectWebSocketInspector } from '../inspect/webSocketInspector.js';
import { startInspectorRelay } from '../inspect/inspectorRelay.js';
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

/**
 * Sends the replay to `url`, or with an empty url serves an inspector relay on `port` that hands every
 * event, the chart's definition first, to each page that connects, and keeps it up until Ctrl-C.
 */
export async function inspectLog(records: Iterable<LogRecord>, { url, port, open }: InspectTarget, output: CliOutput): Promise<number> {
  const relay = url === '' ? await startInspectorRelay({ port, open }) : undefined;
  try {
    const inspector = await connectWebSocketInspector(url || relay!.url);
    let count = 0;
    const snapshot = replayIntoInspector(counting(records, () => (count += 1)), inspector.inspect);
    await inspector.close();
    const state = snapshot ? statePath(snapshot) : null;
    output.result({ ok: true, records: count, events: inspector.sent, state }, [
      `replayed ${count} records (${inspector.sent} inspection events) into ${url || `the inspector at ${relay!.pageUrl}`}; final state ${state ?? 'none'}`,
    ]);
  } catch (error) {
    await relay?.close();
    throw error;
  }
  if (!relay) return 0;
  process.stderr.write(`The inspector page gets all ${relay.events} events, the chart's definition first, however late it opens. Press Ctrl-C to stop serving it.\n`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await relay.close();
  return 0;
}

function* counting<T>(items: Iterable<T>, count: () => void): Generator<T> {
  for (const item of items) {
    count();
    yield item;
  }
}
