/**
 * The log's domain events: every event the chart can receive has one, the translation goes both ways,
 * 0.1.0 records (the chart's own names, unversioned) upcast, and a record this code does not know (an
 * unknown type, a newer format) stops replay and start with a typed error instead of being ignored.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventObject } from 'xstate';
import { updaterMachine } from '../machines/updater.machine.js';
import { createModelUpdater, isUpdateError, readPublicKeyFile } from '../src/index.js';
import {
  boundChartTypes,
  chartEventOf,
  DOMAIN_EVENT_TYPES,
  domainEventOf,
  eventData,
  INIT_EVENT,
  toDomainEvent,
  UNBOUND_DOMAIN_EVENTS,
} from '../src/core/log/domainEvents.js';
import { GENESIS, RECORD_VERSION, recordHash, sealLegacyRecord, sealRecord, type LogRecord } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { replay } from '../src/core/log/replay.js';
import { formatRecord } from '../src/core/log/describe.js';
import { readLogFile } from '../src/node/fileEventLog.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';

const GOLDEN_V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden', 'v0.1.0');

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** A record of this code's format holding the domain event for `event`. */
function recordOf(event: EventObject, seq = 1): LogRecord {
  const { type, data } = toDomainEvent(event);
  return sealRecord({ seq, ts: '2026-01-01T00:00:00.000Z', session: null, type, data, prev: GENESIS });
}

/** Re-chains records after an edit, each in its own format, as a tool rewriting the log would. */
function rechain(records: readonly LogRecord[]): LogRecord[] {
  const out: LogRecord[] = [];
  for (const [seq, { v, hash: _hash, prev: _prev, ...fields }] of records.entries()) {
    const next = { ...fields, seq, prev: out.at(-1)?.hash ?? GENESIS };
    out.push(v === undefined ? sealLegacyRecord(next) : v === RECORD_VERSION ? sealRecord(next) : sealWith(v, next));
  }
  return out;
}

/** A record claiming a format this code does not write (a later model-updater's). */
function sealWith(v: number, fields: Omit<LogRecord, 'hash' | 'v'>): LogRecord {
  const record = { v, ...fields };
  return { ...record, hash: recordHash(record) };
}

const manifestOutput = {
  notModified: false,
  etag: '"abc"',
  manifest: { schemaVersion: 1, serial: 7, versions: [{ version: '1.0.0' }, { version: '2.0.0' }] },
  trust: { keys: ['k'], threshold: 1, serial: 7, anchor: '1:k' },
  url: 'https://models.example/manifest.json',
  unsigned: false,
  rotated: false,
};

describe('the domain events', () => {
  it('every event the chart can receive has a domain event, and every domain event a place in the chart', () => {
    const chartEvents = [INIT_EVENT, ...updaterMachine.root.events];
    const bound = new Set(boundChartTypes());
    // A renamed state, actor or delay shows up here, not as an old log that replays differently.
    expect(chartEvents.filter((type) => !bound.has(type))).toEqual([]);
    expect(UNBOUND_DOMAIN_EVENTS).toEqual([]);
    expect([...bound].filter((type) => !chartEvents.includes(type))).toEqual([]);
    expect(new Set(DOMAIN_EVENT_TYPES).size).toBe(DOMAIN_EVENT_TYPES.length);
    for (const type of DOMAIN_EVENT_TYPES) expect(type).toMatch(/^[a-z]+\.[a-zA-Z]+$/);
  });

  it('translates chart events to domain records and back, exactly', () => {
    const delayed = updaterMachine.root.events.filter((type) => type.startsWith('xstate.after.')).map((type) => ({ type }));
    const events: EventObject[] = [
      { type: INIT_EVENT, input: { config: { channel: 'stable' }, active: null, retained: [] } } as EventObject,
      { type: 'CHECK', sessionId: 's', at: 5, trigger: 'manual', jitter: 0.25 } as EventObject,
      { type: 'ROLLBACK', sessionId: 'r', at: 6, to: '1.0.0' } as EventObject,
      { type: 'PROGRESS', progress: { version: '2.0.0', bytes: 5, total: 10 } } as EventObject,
      { type: 'CANCEL' },
      { type: 'xstate.done.actor.fetchManifest', output: manifestOutput, actorId: 'fetchManifest' } as EventObject,
      { type: 'xstate.done.actor.fetchManifest', output: { notModified: true }, actorId: 'fetchManifest' } as EventObject,
      { type: 'xstate.error.actor.fetchManifest', error: { code: 'SERVICE_UNAVAILABLE', message: 'down', retryAfterMs: 5 }, actorId: 'fetchManifest' } as EventObject,
      { type: 'xstate.done.actor.verifyStaged', output: undefined, actorId: 'verifyStaged' } as EventObject,
      { type: 'xstate.done.actor.switchActive', output: { active: { version: '2.0.0', files: [] }, retained: [] }, actorId: 'switchActive' } as EventObject,
      { type: 'xstate.error.actor.loadModel', error: new Error('bad weights'), actorId: 'loadModel' } as EventObject,
      ...delayed,
    ];
    for (const event of events) {
      const record = recordOf(event);
      expect(record.type.startsWith('xstate.'), record.type).toBe(false);
      expect(chartEventOf(record)).toEqual({ ...eventData(event), type: event.type });
    }
    expect(delayed.map((event) => recordOf(event).type).sort()).toEqual(['conditions.pollDue', 'deferral.ended', 'retry.due']);
    expect(recordOf(events[8]!).data).toEqual({});
    expect(recordOf(events[10]!).data).toEqual({ error: { code: 'LOAD_FAILED', message: 'bad weights' } });
  });

  it('names what happened: an accepted manifest carries its serial and versions, an unchanged one is its own event', () => {
    const accepted = recordOf({ type: 'xstate.done.actor.fetchManifest', output: manifestOutput, actorId: 'fetchManifest' } as EventObject);
    expect(accepted).toMatchObject({ v: RECORD_VERSION, type: 'manifest.accepted', data: { serial: 7, versions: ['1.0.0', '2.0.0'], url: manifestOutput.url } });
    expect(recordOf({ type: 'xstate.done.actor.fetchManifest', output: { notModified: true }, actorId: 'fetchManifest' } as EventObject)).toMatchObject({ type: 'manifest.unchanged', data: {} });
    expect(recordOf({ type: 'STARTED', at: 1 } as EventObject)).toMatchObject({ type: 'updater.started', data: { at: 1 } });
    expect(recordOf({ type: 'xstate.done.actor.restoreVersion', output: { active: null, retained: [] }, actorId: 'restoreVersion' } as EventObject).type).toBe('rollback.completed');
  });
});

describe('0.1.0 records', () => {
  it('upcast from their frozen chart names to domain events, and replay through them', () => {
    const legacy = (type: string, data: Record<string, unknown>) => sealLegacyRecord({ seq: 3, ts: '2026-01-01T00:00:00.000Z', session: 's', type, data, prev: GENESIS });
    const done = legacy('xstate.done.actor.fetchManifest', { output: manifestOutput, actorId: 'fetchManifest' });
    expect(done.v).toBeUndefined();
    expect(domainEventOf(done)).toEqual({ type: 'manifest.accepted', data: { serial: 7, versions: ['1.0.0', '2.0.0'], ...Object.fromEntries(Object.entries(manifestOutput).filter(([key]) => key !== 'notModified')) } });
    expect(chartEventOf(done)).toEqual({ type: 'xstate.done.actor.fetchManifest', output: manifestOutput, actorId: 'fetchManifest' });
    expect(domainEventOf(legacy('xstate.after.retryDelay.updater.downloading.retryWait', {})).type).toBe('retry.due');
    expect(domainEventOf(legacy('xstate.after.retryDelay.updater.idle.deferred', {})).type).toBe('deferral.ended');
    expect(domainEventOf(legacy('CHECK', { sessionId: 's', at: 1, trigger: 'manual' }))).toEqual({ type: 'check.requested', data: { sessionId: 's', at: 1, trigger: 'manual' } });

    // The whole golden 0.1.0 log reads as domain events, and its chain keeps its formula.
    const { records } = readLogFile(path.join(GOLDEN_V1, 'install', LOG_FILE));
    expect(verifyLog(records)).toMatchObject({ ok: true });
    expect(records.map((record) => domainEventOf(record).type).slice(0, 4)).toEqual(['updater.created', 'updater.started', 'check.requested', 'manifest.accepted']);
    expect(replay(records)?.value).toBe('rolledBack');
  });

  it('a 0.1.0 record of a type 0.1.0 never wrote is LOG_CORRUPT', () => {
    const record = sealLegacyRecord({ seq: 0, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'xstate.done.actor.switchVersion', data: {}, prev: GENESIS });
    expect(thrown(() => chartEventOf(record))).toMatchObject({ code: 'LOG_CORRUPT', message: expect.stringContaining('never wrote') });
  });

  it('the hash covers the format version: a new record cannot pass as an old one', () => {
    const record = recordOf({ type: 'CANCEL' }, 0);
    const { v: _v, ...unversioned } = record;
    expect(verifyLog([record])).toMatchObject({ ok: true });
    expect(verifyLog([unversioned])).toMatchObject({ ok: false, seq: 0, reason: expect.stringContaining('hash') });
  });
});

describe('records this code does not know are refused, not ignored', () => {
  it('an unknown domain event or a newer record format is LOG_TOO_NEW, saying a newer model-updater wrote it', () => {
    const renamed = sealRecord({ seq: 0, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'version.promoted', data: {}, prev: GENESIS });
    const unknown = thrown(() => replay([renamed]));
    expect(isUpdateError(unknown) && unknown.code).toBe('LOG_TOO_NEW');
    expect((unknown as Error).message).toMatch(/newer model-updater/);
    // The audit trail still shows it, as written.
    expect(formatRecord(renamed)).toContain('version.promoted (unknown to this model-updater)');

    const newer = sealWith(RECORD_VERSION + 1, { seq: 0, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'check.requested', data: {}, prev: GENESIS });
    for (const run of [() => verifyLog([newer]), () => replay([newer]), () => domainEventOf(newer)]) {
      const error = thrown(run);
      expect(isUpdateError(error) && error.code).toBe('LOG_TOO_NEW');
      expect((error as Error).message).toMatch(/newer model-updater.*do not quarantine/s);
    }
  });

  describe('start() on the golden 0.1.0 install', () => {
    let work: string;
    afterEach(async () => {
      await rm(work, { recursive: true, force: true });
    });

    async function startWith(edit: (records: LogRecord[]) => LogRecord[]) {
      work = await mkdtemp(path.join(os.tmpdir(), 'domain-events-'));
      const dir = path.join(work, 'install');
      await cp(path.join(GOLDEN_V1, 'install'), dir, { recursive: true });
      const file = path.join(dir, LOG_FILE);
      const records = edit(readLogFile(file).records);
      await writeFile(file, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
      const before = await readFile(file, 'utf8');
      const updater = createModelUpdater({ dir, trustedKeys: [await readPublicKeyFile(path.join(GOLDEN_V1, 'release.pub'))], policy: { checkOnStart: false } });
      const error = await updater.start().then(
        () => null,
        (reason: unknown) => reason,
      );
      updater.stop();
      // Refusing changes nothing: the log is as it was.
      expect(await readFile(file, 'utf8')).toBe(before);
      return error as Error & { code?: string };
    }

    it('a record renamed in the 0.1.0 part (the chart renamed an actor, say) stops start with LOG_CORRUPT', async () => {
      const error = await startWith((records) => {
        const index = records.findIndex((record) => record.type === 'xstate.done.actor.restoreVersion');
        return rechain(records.map((record, i) => (i === index ? { ...record, type: 'xstate.done.actor.restorePrevious' } : record)));
      });
      expect(error).toMatchObject({ code: 'LOG_CORRUPT', message: expect.stringContaining('xstate.done.actor.restorePrevious') });
    });

    it('a domain event this code does not know stops start with LOG_TOO_NEW', async () => {
      const error = await startWith((records) => [
        ...records,
        sealRecord({ seq: records.length, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'version.promoted', data: {}, prev: records.at(-1)!.hash }),
      ]);
      expect(error).toMatchObject({ code: 'LOG_TOO_NEW', message: expect.stringMatching(/version\.promoted.*newer model-updater/s) });
    });

    it('a record in a newer format stops start with LOG_TOO_NEW', async () => {
      const error = await startWith((records) => [
        ...records,
        sealWith(RECORD_VERSION + 1, { seq: records.length, ts: '2026-01-01T00:00:00.000Z', session: null, type: 'updater.started', data: { at: 1 }, prev: records.at(-1)!.hash }),
      ]);
      expect(error).toMatchObject({ code: 'LOG_TOO_NEW', message: expect.stringContaining(`record format ${RECORD_VERSION + 1}`) });
    });
  });
});
