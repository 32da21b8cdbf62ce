/**
 * What must hold in a simulated world after every step, whatever failed: one usable active version that
 * verifies, the active version changed only by a switch, a rollback or a recovery, a log whose chain
 * verifies and replays to the live snapshot (twice the same), storage within retention, typed errors.
 */
import { exclusiveBytes } from '../../machines/retention.js';
import { isSettled } from '../core/createUpdater.js';
import { ERROR_CODES, UpdateError } from '../core/errors.js';
import { domainTypeOf } from '../core/log/domainEvents.js';
import { verifyLog } from '../core/log/chain.js';
import { CHECKPOINT } from '../core/log/record.js';
import { replay, type UpdaterSnapshot } from '../core/log/replay.js';
import type { SimulatedWorld } from './simulatedWorld.js';

/** A broken invariant; its message says which and how. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

/** What the invariants remember from one step to the next. */
export interface Observation {
  active: string | null;
  /** Records in the durable log when observed. */
  records: number;
  everInstalled: boolean;
  /** Errors already checked. */
  errors: number;
}

export const FIRST_OBSERVATION: Observation = { active: null, records: 0, everInstalled: false, errors: 0 };

/** Events after which the active version may differ: a completed switch or rollback. */
const CHANGES_ACTIVE = ['version.activated', 'rollback.completed'];

function plain(snapshot: Pick<UpdaterSnapshot, 'value' | 'context'>): string {
  return JSON.stringify({ value: snapshot.value, context: snapshot.context });
}

/** Logs already replayed (by logKey), with what they replay to; a few, the newest. */
const replays = new Map<string, string | null>();

function logKey(records: ReadonlyArray<{ hash: string }>): string {
  return `${records.length}:${records.at(-1)?.hash ?? ''}`;
}

function remember(records: ReadonlyArray<{ hash: string }>, replayed: string | null): string | null {
  replays.set(logKey(records), replayed);
  if (replays.size > 256) replays.delete(replays.keys().next().value!);
  return replayed;
}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

/** Why a reported error is not a proper UpdateError, or null. */
export function untypedReason(error: unknown, thrown: boolean): string | null {
  if (thrown && !(error instanceof UpdateError)) return `not an UpdateError: ${String(error)}`;
  const code = (error as { code?: unknown } | null)?.code;
  if (!(ERROR_CODES as readonly unknown[]).includes(code)) return `unknown code ${String(code)}`;
  if (code === 'UNKNOWN') return `code UNKNOWN: ${(error as Error).message}`;
  return null;
}

/**
 * Checks every invariant and returns what to compare the next step with.
 * @example
 * let seen = FIRST_OBSERVATION; seen = await checkInvariants(world, seen)
 */
export async function checkInvariants(world: SimulatedWorld<any>, previous: Observation): Promise<Observation> {
  const { store, logDisk } = world;
  const records = logDisk.records;

  // No error is ever untyped.
  for (const { source, error } of world.errors.slice(previous.errors)) {
    const reason = untypedReason(error, !source.endsWith('result'));
    if (reason) fail(`${source} reported an untyped error: ${reason}`);
  }
  for (const record of records.slice(previous.records)) {
    const error = (record.data as { error?: unknown }).error;
    if (error !== undefined && untypedReason(error, false)) fail(`log record ${record.seq} (${record.type}) holds an untyped error: ${untypedReason(error, false)}`);
  }

  // The chain verifies, and the durable log replays to a usable state, the same twice. (A log already
  // checked, named by its length and its last hash, which the chain ties to every record, is not refolded.)
  if (!replays.has(logKey(records))) {
    const verification = verifyLog(records);
    if (!verification.ok) fail(`the event log fails verification at record ${verification.seq}: ${verification.reason}`);
    const replayed = replay(records);
    if (replayed && replayed.status !== 'active') fail(`the event log replays to a snapshot with status ${replayed.status}`);
    const again = replay(records);
    if (replayed && plain(replayed) !== plain(again!)) fail('replaying the log twice gave different snapshots');
    // Without a checkpoint in the log, the replay above was the full fold already.
    const full = records.some((record) => record.type === CHECKPOINT) ? replay(records, undefined, { fromCheckpoint: false }) : replayed;
    if (replayed && plain(replayed) !== plain(full!)) fail('replay from the last checkpoint differs from the full fold');
    remember(records, replayed ? plain(replayed) : null);
  }

  // The live snapshot is what its log replays to.
  const updater = world.updater;
  // A process whose start() failed before its log opened has no live updater to compare.
  const ownRecords = updater && !world.halted ? journalOf(updater) : null;
  const live = updater && ownRecords ? updater.getSnapshot() : null;
  if (live && ownRecords) {
    const own = replays.get(logKey(ownRecords)) ?? remember(ownRecords, ((snapshot) => (snapshot ? plain(snapshot) : null))(replay(ownRecords)));
    if (own !== plain(live)) {
      fail(`replay(log) differs from the live snapshot:\n  live:   ${plain(live)}\n  replay: ${own ?? 'null'}`);
    }
  }

  // Exactly one active version once any was installed, complete and verifying.
  const pointer = await store.readPointer();
  const everInstalled = previous.everInstalled || pointer !== null;
  if (everInstalled && pointer === null) fail('a version was installed but the store has no active pointer any more');
  if (pointer) {
    const problem = store.verifyVersion(pointer.active);
    if (problem) fail(`the active version does not verify: ${problem}`);
    const kept = [pointer.active, ...pointer.retained].map((v) => v.version);
    if (new Set(kept).size !== kept.length) fail(`the pointer names a version twice: ${kept.join(', ')}`);
  }

  // The active version changes only by a completed switch, a rollback, or a recovery (which replays one).
  const active = live ? (live.context.active?.version ?? null) : previous.active;
  if (live && active !== previous.active) {
    const since = ownRecords!.slice(Math.min(previous.records, ownRecords!.length));
    if (!since.some((record) => CHANGES_ACTIVE.includes(domainTypeOf(record))) && previous.records <= ownRecords!.length) {
      fail(`the active version changed from ${previous.active} to ${active} without a completed switch or rollback in the log`);
    }
  }

  if (live && isSettled(live) && world.process.stalls === 0 && world.startState !== 'starting') {
    // Settled, the chart and the store agree.
    if ((live.context.active?.version ?? null) !== (pointer?.active.version ?? null)) {
      fail(`the chart says ${live.context.active?.version ?? 'nothing'} is active, the store's pointer says ${pointer?.active.version ?? 'nothing'}`);
    }
    // Usable: the host has it loaded, unless the simulator made its load fail.
    const version = live.context.active?.version;
    if (version && !world.loader.loaded.has(version) && !world.loader.injectedLoadFailures.has(version)) {
      fail(`version ${version} is active but the host has no usable model: its load did not succeed (start: ${describeStart(world.startState)})`);
    }
  }

  // Storage stays within the retention budget.
  if (live) {
    const { config, retained } = live.context;
    if (retained.length > config.keepVersions - 1) fail(`${retained.length} versions retained besides the active one; keepVersions is ${config.keepVersions}`);
    const current = live.context.active;
    if (current && retained.length > 1) {
      const bytes = exclusiveBytes(retained.slice(1), [current, retained[0]!]);
      if (bytes > config.maxRetainedBytes) fail(`retained versions use ${bytes} bytes beyond the previous one; the budget is ${config.maxRetainedBytes}`);
    }
  }

  // Halted (its log failed), the updater may have acted on a record only the disk holds: count from
  // where its own log ended, so the next process's replay of that record is seen as the change.
  return { active, records: ownRecords ? ownRecords.length : previous.records, everInstalled, errors: world.errors.length };
}

/** The records of the updater's own log, or null while it has none (not started, or its start failed). */
function journalOf(updater: NonNullable<SimulatedWorld<any>['updater']>) {
  try {
    return updater.log.records();
  } catch {
    return null;
  }
}

function describeStart(state: SimulatedWorld['startState']): string {
  if (typeof state === 'string') return state;
  const error = state.failed as { code?: string; message?: string };
  return `failed with ${error?.code ?? ''} ${error?.message ?? String(state.failed)}`;
}
