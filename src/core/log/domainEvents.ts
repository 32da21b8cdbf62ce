/**
 * The log's vocabulary: records are domain events (`check.requested`, `manifest.accepted`,
 * `version.activated`, ...) with a schema version, not the chart's internal event names. This module is
 * the one place that translates between the two: a chart event into a record when journaling, a record
 * back into a chart event when replaying. Renaming a state, an actor or a delay changes only how a domain
 * event is bound to the chart below (and a test fails until it is bound again), never an old log.
 */
import type { EventObject } from 'xstate';
import { actorErrorData } from '../../../machines/failureCodes.js';
import type { FetchManifestOutput, UpdaterEvent } from '../../../machines/types.js';
import { updaterMachine } from '../../../machines/updater.machine.js';
import { UpdateError } from '../errors.js';
import { META_PREFIX, newerFormat, RECORD_VERSION, recordVersion, type LogRecord } from './record.js';

/** What a record holds: a domain event and its data. */
export interface DomainEvent {
  type: DomainEventType;
  data: Record<string, unknown>;
}

type Payload = Record<string, unknown>;
type ActorId = keyof typeof updaterMachine.implementations.actors;
type DelayName = keyof typeof updaterMachine.implementations.delays;

/** Where the chart receives an event, in the chart's own terms: resolved against the machine below. */
type Binding =
  | { kind: 'init' }
  | { kind: 'host'; event: UpdaterEvent['type'] }
  | { kind: 'done' | 'error'; actor: ActorId; void?: boolean }
  | { kind: 'after'; state: string; delay: DelayName };

interface Spec {
  on: Binding;
  /** Chooses this domain event when one chart event means several (a manifest accepted or unchanged). */
  when?: (payload: Payload) => boolean;
  /** The record's data, from the chart event without its type. */
  toData?: (payload: Payload) => Payload;
  /** The chart event's payload, from the record's data. */
  toPayload?: (data: Payload) => Payload;
}

const init = (): Spec => ({ on: { kind: 'init' }, toData: ({ input }) => input as Payload, toPayload: (input) => ({ input }) });
const host = (event: UpdaterEvent['type']): Spec => ({ on: { kind: 'host', event } });
const done = (actor: ActorId): Spec => ({ on: { kind: 'done', actor } });
/** An actor whose output is void: the record carries no data. */
const doneVoid = (actor: ActorId): Spec => ({ on: { kind: 'done', actor, void: true } });
const failed = (actor: ActorId): Spec => ({ on: { kind: 'error', actor } });
const after = (state: string, delay: DelayName): Spec => ({ on: { kind: 'after', state, delay } });

const notModified = (payload: Payload) => (payload.output as FetchManifestOutput).notModified;

/**
 * Every domain event, bound to where the chart receives it. Names are ours and stable: add new ones,
 * never rename one (old logs hold it). The data of a host event is the event's fields; of an actor's
 * result its output (or `{ error }`); of a timer nothing.
 */
const DOMAIN_EVENTS = {
  'updater.created': init(),
  'updater.started': host('STARTED'),
  'config.changed': host('CONFIGURE'),
  'trust.reset': host('TRUST'),
  'active.loaded': host('LOADED'),
  'version.confirmed': host('CONFIRM'),
  'check.requested': host('CHECK'),
  'update.approved': host('APPROVE'),
  'cancel.requested': host('CANCEL'),
  'rollback.requested': host('ROLLBACK'),
  'retry.requested': host('RETRY_NOW'),
  'update.interrupted': host('INTERRUPTED'),
  'conditions.changed': host('CONDITIONS_CHANGED'),
  'staged.applyRequested': host('APPLY_STAGED'),
  'download.progressed': host('PROGRESS'),
  'quarantine.released': host('RELEASE'),
  'manifest.accepted': {
    ...done('fetchManifest'),
    when: (payload) => !notModified(payload),
    // serial and versions up front, for readers of the audit trail; replay rebuilds the output from the rest.
    toData: ({ output }) => {
      const { notModified: _, ...accepted } = output as Extract<FetchManifestOutput, { notModified: false }>;
      return { serial: accepted.manifest.serial ?? null, versions: accepted.manifest.versions.map((entry) => entry.version), ...accepted };
    },
    toPayload: ({ serial: _serial, versions: _versions, ...accepted }) => ({ output: { notModified: false, ...accepted } }),
  },
  'manifest.unchanged': {
    ...done('fetchManifest'),
    when: notModified,
    // The estimate of the bytes to fetch, when the check made one (older records have none).
    toData: ({ output }) => {
      const { estimate } = output as Extract<FetchManifestOutput, { notModified: true }>;
      return estimate ? { estimate } : {};
    },
    toPayload: ({ estimate }) => ({ output: { notModified: true, ...(estimate ? { estimate } : {}) } }),
  },
  'manifest.failed': failed('fetchManifest'),
  'deferral.ended': after('idle.deferred', 'retryDelay'),
  'conditions.checked': done('checkConditions'),
  'conditions.failed': failed('checkConditions'),
  'conditions.pollDue': after('downloading.waitingForConditions', 'conditionsPoll'),
  'preflight.passed': done('checkDiskSpace'),
  'preflight.failed': failed('checkDiskSpace'),
  'download.completed': done('downloadVersion'),
  'download.failed': failed('downloadVersion'),
  'retry.due': after('downloading.retryWait', 'retryDelay'),
  'version.verified': doneVoid('verifyStaged'),
  'verification.failed': failed('verifyStaged'),
  'version.staged': doneVoid('stageVersion'),
  'staging.failed': failed('stageVersion'),
  'migration.completed': doneVoid('runMigration'),
  'migration.failed': failed('runMigration'),
  'model.loaded': doneVoid('loadModel'),
  'model.loadFailed': failed('loadModel'),
  'health.passed': doneVoid('checkHealth'),
  'health.failed': failed('checkHealth'),
  'version.activated': done('switchActive'),
  'switch.failed': failed('switchActive'),
  'rollback.completed': done('restoreVersion'),
  'rollback.failed': failed('restoreVersion'),
} satisfies Record<string, Spec>;

export type DomainEventType = keyof typeof DOMAIN_EVENTS;

/** The chart's init event, journaled when a log starts. */
export const INIT_EVENT = 'xstate.init';

/**
 * The record types model-updater 0.1.0 wrote (its chart's event names), frozen: they upcast to domain
 * events whatever the chart is called today. Their data is that chart event's payload, which is still
 * the payload the domain events are made from.
 */
const V1_TYPES: Readonly<Record<string, DomainEventType | ((payload: Payload) => DomainEventType)>> = {
  'xstate.init': 'updater.created',
  STARTED: 'updater.started',
  CONFIGURE: 'config.changed',
  TRUST: 'trust.reset',
  LOADED: 'active.loaded',
  CONFIRM: 'version.confirmed',
  CHECK: 'check.requested',
  APPROVE: 'update.approved',
  CANCEL: 'cancel.requested',
  ROLLBACK: 'rollback.requested',
  RETRY_NOW: 'retry.requested',
  INTERRUPTED: 'update.interrupted',
  CONDITIONS_CHANGED: 'conditions.changed',
  PROGRESS: 'download.progressed',
  'xstate.done.actor.fetchManifest': (payload) => (notModified(payload) ? 'manifest.unchanged' : 'manifest.accepted'),
  'xstate.error.actor.fetchManifest': 'manifest.failed',
  'xstate.after.retryDelay.updater.idle.deferred': 'deferral.ended',
  'xstate.done.actor.checkConditions': 'conditions.checked',
  'xstate.error.actor.checkConditions': 'conditions.failed',
  'xstate.after.conditionsPoll.updater.downloading.waitingForConditions': 'conditions.pollDue',
  'xstate.done.actor.checkDiskSpace': 'preflight.passed',
  'xstate.error.actor.checkDiskSpace': 'preflight.failed',
  'xstate.done.actor.downloadVersion': 'download.completed',
  'xstate.error.actor.downloadVersion': 'download.failed',
  'xstate.after.retryDelay.updater.downloading.retryWait': 'retry.due',
  'xstate.done.actor.verifyStaged': 'version.verified',
  'xstate.error.actor.verifyStaged': 'verification.failed',
  'xstate.done.actor.stageVersion': 'version.staged',
  'xstate.error.actor.stageVersion': 'staging.failed',
  'xstate.done.actor.runMigration': 'migration.completed',
  'xstate.error.actor.runMigration': 'migration.failed',
  'xstate.done.actor.loadModel': 'model.loaded',
  'xstate.error.actor.loadModel': 'model.loadFailed',
  'xstate.done.actor.checkHealth': 'health.passed',
  'xstate.error.actor.checkHealth': 'health.failed',
  'xstate.done.actor.switchActive': 'version.activated',
  'xstate.error.actor.switchActive': 'switch.failed',
  'xstate.done.actor.restoreVersion': 'rollback.completed',
  'xstate.error.actor.restoreVersion': 'rollback.failed',
};

interface Bound {
  type: DomainEventType;
  spec: Spec;
  /** The chart event type it stands for in the machine as it is now. */
  chartType: string;
  actorId?: string;
}

type StateNodeLike = {
  path: string[];
  states: Record<string, StateNodeLike>;
  invoke: Array<{ id: string }>;
  after: Array<{ delay: unknown; eventType: string }>;
};

function nodes(node: StateNodeLike): StateNodeLike[] {
  return [node, ...Object.values(node.states).flatMap(nodes)];
}

/** The chart event type a binding stands for, read off the machine; null when the machine has no such place. */
function chartTypeOf(on: Binding, machine = updaterMachine): string | null {
  const all = nodes(machine.root as unknown as StateNodeLike);
  switch (on.kind) {
    case 'init':
      return INIT_EVENT;
    case 'host':
      return on.event;
    case 'done':
    case 'error': {
      const invoked = all.some((node) => node.invoke.some((invoke) => invoke.id === on.actor));
      // XState v5 names an invoked actor's result `xstate.done.actor.<id>` / `xstate.error.actor.<id>`.
      return invoked ? `xstate.${on.kind}.actor.${on.actor}` : null;
    }
    case 'after': {
      const node = all.find((candidate) => candidate.path.join('.') === on.state);
      return node?.after.find((delayed) => delayed.delay === on.delay)?.eventType ?? null;
    }
  }
}

const BOUND = new Map<DomainEventType, Bound>();
const BY_CHART_TYPE = new Map<string, Bound[]>();
/** Domain events the machine has no place for (a renamed state, actor or delay): the coverage test names them. */
export const UNBOUND_DOMAIN_EVENTS: DomainEventType[] = [];

for (const [type, spec] of Object.entries(DOMAIN_EVENTS) as Array<[DomainEventType, Spec]>) {
  const chartType = chartTypeOf(spec.on);
  if (chartType === null) {
    UNBOUND_DOMAIN_EVENTS.push(type);
    continue;
  }
  const bound: Bound = { type, spec, chartType, ...(spec.on.kind === 'done' || spec.on.kind === 'error' ? { actorId: spec.on.actor } : {}) };
  BOUND.set(type, bound);
  BY_CHART_TYPE.set(chartType, [...(BY_CHART_TYPE.get(chartType) ?? []), bound]);
}

/** Every domain event type, in the order of the table. */
export const DOMAIN_EVENT_TYPES = Object.keys(DOMAIN_EVENTS) as DomainEventType[];

/** The chart event types the domain events stand for (the coverage test compares them with the machine's). */
export function boundChartTypes(): string[] {
  return [...BY_CHART_TYPE.keys()];
}

/** The JSON-safe payload of a chart event: errors become their plain `{ code, message }` form. */
export function eventData(event: EventObject): Record<string, unknown> {
  const { type: _type, ...rest } = event as EventObject & Record<string, unknown>;
  // Typed by the failing actor, as the chart types it: no journaled error is UNKNOWN where the chart is not.
  if ('error' in rest) rest.error = actorErrorData(event as EventObject & { error?: unknown });
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

function dataOf(spec: Spec, payload: Payload): Payload {
  const { actorId: _actorId, ...rest } = payload;
  if (spec.toData) return spec.toData(rest);
  switch (spec.on.kind) {
    case 'done':
      return spec.on.void ? {} : { ...(rest.output as Payload) };
    case 'error':
      return { error: rest.error };
    case 'after':
      return {};
    default:
      return rest;
  }
}

function fromPayload(type: DomainEventType, payload: Payload, describe: () => string): DomainEvent {
  const bound = BOUND.get(type);
  if (!bound) throw new UpdateError('UNKNOWN', `${describe()} maps to the domain event "${type}", which the chart has no place for (a bug in model-updater; please report it).`);
  // The payload is JSON-safe already (eventData, or a parsed record): so is what is built from it.
  return { type, data: dataOf(bound.spec, payload) };
}

/**
 * The record for an event the chart is about to process.
 * @example
 * toDomainEvent({ type: 'xstate.done.actor.switchActive', output: { active, retained } }) // { type: 'version.activated', data: { active, retained } }
 */
export function toDomainEvent(event: EventObject): DomainEvent {
  const payload = eventData(event);
  const candidates = BY_CHART_TYPE.get(event.type) ?? [];
  const bound = candidates.find((candidate) => candidate.spec.when?.(payload) ?? true);
  if (!bound) throw new UpdateError('UNKNOWN', `The chart received "${event.type}", which has no domain event to journal it as (a bug in model-updater; please report it).`);
  return fromPayload(bound.type, payload, () => `The chart event "${event.type}"`);
}

/** Whether a record is a chart's event (as opposed to the log's own `log.*` bookkeeping). */
export function isMachineRecord(record: Pick<LogRecord, 'type'>): boolean {
  return !record.type.startsWith(META_PREFIX);
}

/**
 * The domain event a machine record holds: a 0.1.0 record is upcast from its frozen chart name. A record
 * in a newer format, or of a kind this code does not know, is refused: replaying past it would be wrong.
 * @example
 * domainEventOf(record).type // 'version.activated'
 */
export function domainEventOf(record: LogRecord): DomainEvent {
  const version = recordVersion(record);
  if (version === 1) {
    const upcast = V1_TYPES[record.type];
    if (upcast === undefined) {
      throw new UpdateError(
        'LOG_CORRUPT',
        `Record ${record.seq} of the event log has the type "${record.type}", which model-updater 0.1.0 never wrote. Run \`model-updater log --verify --dir <dir>\`; set the log aside with \`model-updater log --quarantine --dir <dir>\` (the installed models stay).`,
      );
    }
    const type = typeof upcast === 'function' ? upcast(record.data) : upcast;
    return fromPayload(type, record.data, () => `Record ${record.seq} ("${record.type}")`);
  }
  if (version > RECORD_VERSION) throw newerFormat(record.seq, `is in record format ${version} (this model-updater reads formats 1 to ${RECORD_VERSION})`);
  if (!(record.type in DOMAIN_EVENTS)) throw newerFormat(record.seq, `is a "${record.type}" event, which this model-updater does not know`);
  return { type: record.type as DomainEventType, data: record.data };
}

/**
 * The chart event a machine record stands for, to replay it: the one way back from the log into the chart.
 * @example
 * transition(updaterMachine, snapshot, chartEventOf(record))
 */
export function chartEventOf(record: LogRecord): EventObject & Record<string, unknown> {
  const { type, data } = domainEventOf(record);
  const bound = BOUND.get(type);
  if (!bound) throw new UpdateError('UNKNOWN', `Record ${record.seq} is a "${type}" event, which the chart has no place for (a bug in model-updater; please report it).`);
  // Built in one object: replay runs this for every record of the log.
  const { spec, actorId, chartType } = bound;
  if (spec.toPayload) return { ...spec.toPayload(data), ...(actorId === undefined ? {} : { actorId }), type: chartType };
  switch (spec.on.kind) {
    case 'done':
      return spec.on.void ? { actorId, type: chartType } : { output: data, actorId, type: chartType };
    case 'error':
      return { error: data.error, actorId, type: chartType };
    case 'after':
      return { type: chartType };
    default:
      return { ...data, type: chartType };
  }
}

/** The record type a log's records are read as: the domain type, a 0.1.0 record's upcast one, or `log.*`. */
export function domainTypeOf(record: LogRecord): string {
  return isMachineRecord(record) ? domainEventOf(record).type : record.type;
}

/** Audit record written the first time records of this format follow 0.1.0 ones in a log. */
export const FORMAT_UPGRADED = `${META_PREFIX}format`;
