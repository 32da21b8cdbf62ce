/**
 * `model-updater log --html <file>`: an event log as one self-contained HTML page that works offline.
 * It shows the statechart (drawn from the machine, as the README's diagram is), the records on a
 * timeline with their sessions, times and payloads, and steps through them with the active states
 * highlighted. This module turns the records into the page's data; htmlLogPage.ts is the page.
 */
import { initialTransition, transition } from 'xstate';
import { updaterMachine } from '../../machines/updater.machine.js';
import type { UpdaterInput } from '../../machines/types.js';
import { summarize } from '../core/log/describe.js';
import { chartEventOf, INIT_EVENT, isMachineRecord } from '../core/log/domainEvents.js';
import { CHECKPOINT, type LogRecord } from '../core/log/record.js';
import { restoreCheckpoint, type UpdaterSnapshot } from '../core/log/replay.js';
import { renderLogPage } from './htmlLogPage.js';
import { STATECHART_SVG } from './statechartSvg.generated.js';

/** A payload longer than this (as JSON) is cut in the page, saying how much was left out. */
export const MAX_PAYLOAD_CHARS = 4_000;

/**
 * One record in the page: `[seq, ts, session, type, activeSet, summary, payload]`, with `session`,
 * `type` and `activeSet` indexes into the tables of LogPageData (-1: outside a session); kept as
 * arrays because a long log has many thousands of them.
 */
export type PageRecord = [seq: number, ts: string, session: number, type: number, activeSet: number, summary: string, payload: string];

export interface LogPageData {
  title: string;
  machine: string;
  sessions: string[];
  types: string[];
  /** Each distinct set of active states (ids like `downloading.fetching`, ancestors included). */
  activeSets: string[][];
  records: PageRecord[];
}

/** The ids of every active state in a snapshot value, ancestors first: `{ a: 'b' }` -> `['a', 'a.b']`. */
export function activeStateIds(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => [prefix + key, ...activeStateIds(inner, `${prefix}${key}.`)]);
}

function payloadText(data: Record<string, unknown>): string {
  const text = JSON.stringify(data, null, 2) ?? '';
  if (text.length <= MAX_PAYLOAD_CHARS) return text;
  return `${text.slice(0, MAX_PAYLOAD_CHARS)}\n… (${text.length - MAX_PAYLOAD_CHARS} more characters; \`model-updater log --json\` prints all of it)`;
}

/** The snapshot after `record`; a record this version cannot read (from a newer one) leaves it as it was. */
function applied(machine: typeof updaterMachine, snapshot: UpdaterSnapshot | null, record: LogRecord): UpdaterSnapshot | null {
  let event: ReturnType<typeof chartEventOf>;
  try {
    event = chartEventOf(record);
  } catch {
    return snapshot;
  }
  if (event.type === INIT_EVENT) return initialTransition(machine, event.input as UpdaterInput)[0];
  return snapshot ? transition(machine, snapshot, event as never)[0] : null;
}

/**
 * Folds the records through the chart (as `replay()` does, nothing runs) and keeps, for each record, the
 * states active after it. Reads `records` once, so a segment-by-segment reader keeps memory flat.
 * @example
 * const data = logPageData(readAllRecords(dir), { title: dir })
 */
export function logPageData(records: Iterable<LogRecord>, { title = 'event log', machine = updaterMachine }: { title?: string; machine?: typeof updaterMachine } = {}): LogPageData {
  const sessions = new Map<string, number>();
  const types = new Map<string, number>();
  const activeSets = new Map<string, number>();
  const indexOf = (table: Map<string, number>, key: string) => {
    let index = table.get(key);
    if (index === undefined) table.set(key, (index = table.size));
    return index;
  };
  const page: PageRecord[] = [];
  let snapshot: UpdaterSnapshot | null = null;
  let active = indexOf(activeSets, JSON.stringify([]));
  for (const record of records) {
    if (record.type === CHECKPOINT && snapshot === null) {
      // A log whose older segments were dropped starts at a checkpoint: begin from the state it holds.
      snapshot = restoreCheckpoint(record, machine);
    } else if (isMachineRecord(record)) {
      snapshot = applied(machine, snapshot, record);
    }
    if (snapshot) active = indexOf(activeSets, JSON.stringify(activeStateIds(snapshot.value)));
    let summary = '';
    try {
      summary = summarize(record);
    } catch {
      // A record of an unexpected shape still shows, with its payload.
    }
    page.push([record.seq, record.ts, record.session === null ? -1 : indexOf(sessions, record.session), indexOf(types, record.type), active, summary, payloadText(record.data)]);
  }
  return {
    title,
    machine: machine.id,
    sessions: [...sessions.keys()],
    types: [...types.keys()],
    activeSets: [...activeSets.keys()].map((key) => JSON.parse(key) as string[]),
    records: page,
  };
}

export interface HtmlLog {
  html: string;
  records: number;
  sessions: number;
}

/**
 * The whole page for a log: one HTML file with its styles, script, chart and data inline, which makes
 * no network request when opened.
 * @example
 * writeFileSync('update.html', htmlLog(readAllRecords(dir), { title: dir }).html)
 */
export function htmlLog(records: Iterable<LogRecord>, options: { title?: string } = {}): HtmlLog {
  const data = logPageData(records, options);
  return { html: renderLogPage(data, STATECHART_SVG), records: data.records.length, sessions: data.sessions.length };
}
