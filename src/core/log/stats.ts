/**
 * What the log says about how updates go: outcomes and failure codes, download times and throughput,
 * time in each state, and one line per session. A pure fold over the records.
 */
import { initialTransition, transition } from 'xstate';
import { updaterMachine } from '../../../machines/updater.machine.js';
import { totalSize } from '../../../machines/selectCandidate.js';
import type { DownloadOutput, UpdaterInput } from '../../../machines/types.js';
import { statePath } from '../statePath.js';
import { CHECKPOINT, type LogRecord } from './record.js';
import { chartEventOf, INIT_EVENT, isMachineRecord } from './domainEvents.js';
import { restoreCheckpoint, type UpdaterSnapshot } from './replay.js';

export interface SessionStats {
  sessionId: string;
  trigger: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  outcome: string | null;
  version: string | null;
  errorCode: string | null;
}

export interface DownloadStats {
  sessionId: string;
  version: string;
  bytes: number;
  /** Of those, fetched over the network (a differential download copies the rest); absent before 0.4.0. */
  fetchedBytes?: number;
  seconds: number;
  bytesPerSecond: number;
}

export interface UpdateStats {
  sessions: number;
  outcomes: Record<string, number>;
  /** Activated / (activated + failed + rolled back); null before any such session. */
  successRate: number | null;
  failuresByCode: Record<string, number>;
  downloads: DownloadStats[];
  /** Milliseconds spent in each state (dotted path), up to the last record. */
  timeInState: Record<string, number>;
  bySession: SessionStats[];
}

/**
 * @example
 * const stats = logStats(readLogFile(path).records); stats.failuresByCode // { INTEGRITY_MISMATCH: 1 }
 */
export function logStats(records: Iterable<LogRecord>): UpdateStats {
  const stats: UpdateStats = { sessions: 0, outcomes: {}, successRate: null, failuresByCode: {}, downloads: [], timeInState: {}, bySession: [] };
  const sessions = new Map<string, SessionStats>();
  let snapshot: UpdaterSnapshot | null = null;
  let since = 0;
  let downloadStart: number | null = null;

  for (const record of records) {
    // A log whose oldest segments were dropped starts at a segment's checkpoint.
    if (snapshot === null && record.type === CHECKPOINT) snapshot = restoreCheckpoint(record);
    if (!isMachineRecord(record)) continue;
    const at = Date.parse(record.ts);
    const before: UpdaterSnapshot | null = snapshot;
    const event = chartEventOf(record);
    if (event.type === INIT_EVENT) [snapshot] = initialTransition(updaterMachine, event.input as UpdaterInput);
    else if (snapshot) [snapshot] = transition(updaterMachine, snapshot, event as never);
    if (!snapshot) continue;

    if (before) {
      const path = statePath(before);
      stats.timeInState[path] = (stats.timeInState[path] ?? 0) + (at - since);
    }
    since = at;

    const fetchingNow = snapshot.matches({ downloading: 'fetching' } as never);
    const fetchingBefore = before?.matches({ downloading: 'fetching' } as never) ?? false;
    if (fetchingNow && !fetchingBefore) downloadStart = at;
    if (!fetchingNow && fetchingBefore && downloadStart !== null && snapshot.matches('verifying')) {
      const candidate = snapshot.context.candidate!;
      const seconds = Math.max(0.001, (at - downloadStart) / 1000);
      const bytes = totalSize(candidate);
      const fetchedBytes = (event as { output?: DownloadOutput }).output?.fetchedBytes;
      stats.downloads.push({
        sessionId: snapshot.context.session?.id ?? '',
        version: candidate.version,
        bytes,
        ...(fetchedBytes === undefined ? {} : { fetchedBytes }),
        seconds,
        bytesPerSecond: Math.round(bytes / seconds),
      });
      downloadStart = null;
    }

    const session = snapshot.context.session;
    if (session && !sessions.has(session.id)) {
      sessions.set(session.id, {
        sessionId: session.id,
        trigger: session.trigger,
        startedAt: record.ts,
        endedAt: null,
        durationMs: null,
        outcome: null,
        version: null,
        errorCode: null,
      });
    }
    const result = snapshot.context.lastResult;
    if (result && result !== before?.context.lastResult) {
      const entry = sessions.get(result.sessionId);
      if (entry && entry.outcome === null) {
        Object.assign(entry, {
          endedAt: record.ts,
          durationMs: at - Date.parse(entry.startedAt),
          outcome: result.outcome,
          version: result.version,
          errorCode: result.error?.code ?? null,
        });
      }
    }
  }

  stats.bySession = [...sessions.values()];
  stats.sessions = stats.bySession.length;
  for (const session of stats.bySession) {
    if (session.outcome) stats.outcomes[session.outcome] = (stats.outcomes[session.outcome] ?? 0) + 1;
    if (session.errorCode && session.outcome !== 'cancelled') stats.failuresByCode[session.errorCode] = (stats.failuresByCode[session.errorCode] ?? 0) + 1;
  }
  const { activated = 0, failed = 0, 'rolled-back': rolledBack = 0 } = stats.outcomes;
  const decided = activated + failed + rolledBack;
  stats.successRate = decided ? activated / decided : null;
  return stats;
}
