/**
 * The update policy: one typed object, validated with a schema so a mistake names the field.
 */
import semver from 'semver';
import { z } from 'zod';
import type { Approval } from '../../machines/types.js';
import { UpdateError } from './errors.js';
import { DEFAULT_SCHEDULE, type SchedulePolicy } from './schedule.js';

/** A host condition for downloading: true when met, false (or a reason string) when not. */
export type DownloadCondition = () => boolean | string | Promise<boolean | string>;

export interface UpdatePolicy {
  /**
   * 'auto' downloads and activates; 'ask' stops in `awaitingApproval` until approve(); or one rule per
   * semver level, e.g. `{ patch: 'auto', minor: 'auto', major: 'ask' }`. Default 'auto'.
   */
  approval?: Approval;
  /** Versions never to install. */
  skip?: string[];
  /** A semver range to stay within, e.g. '~2.3.0'. */
  pin?: string;
  /**
   * Check after start(). By default the first check waits a random part of one interval
   * (`schedule.startupSpreadMs`) so a fleet that starts together does not check together, except in a
   * folder with no model yet, which checks at once. `true`: check at once on every start (after an
   * explicit `schedule.startupDelayMs` / `startupSpreadMs` only). `false`: no start-up check; the first is
   * one interval later.
   */
  checkOnStart?: boolean;
  /** Periodic background checks with jitter and back-off; false turns them off. Default on. */
  schedule?: Partial<SchedulePolicy> | false;
  /**
   * Conditions for downloading, by name (e.g. `{ unmetered: () => !onCellular(), charging: () => onPower() }`).
   * While one is not met the chart waits in `downloading.waitingForConditions`, naming it, and looks
   * again every `conditionsPollMs` or when you call `conditionsChanged()`.
   */
  downloadWhen?: Record<string, DownloadCondition>;
  /** In a browser, wait while `navigator.connection` says the link is metered (saveData or cellular). Default false. */
  avoidMeteredConnection?: boolean;
  conditionsPollMs?: number;
}

const rule = z.enum(['auto', 'ask']);
const versionList = z.array(z.string().refine((v) => semver.valid(v) === v, 'must be a semver version like 1.2.0'));
const policySchema = z.strictObject({
  approval: z.union([rule, z.strictObject({ major: rule.optional(), minor: rule.optional(), patch: rule.optional() })]).optional(),
  skip: versionList.optional(),
  pin: z.string().refine((r) => semver.validRange(r) !== null, 'must be a semver range like ~2.3.0').optional(),
  checkOnStart: z.boolean().optional(),
  schedule: z
    .union([
      z.literal(false),
      z.strictObject({
        startupDelayMs: z.number().nonnegative().optional(),
        startupSpreadMs: z.number().nonnegative().optional(),
        intervalMs: z.number().positive().optional(),
        spread: z.number().min(0).max(1).optional(),
        failureBaseMs: z.number().positive().optional(),
        failureMaxMs: z.number().positive().optional(),
      }),
    ])
    .optional(),
  downloadWhen: z.record(z.string(), z.custom<DownloadCondition>((f) => typeof f === 'function', 'must be a function')).optional(),
  avoidMeteredConnection: z.boolean().optional(),
  conditionsPollMs: z.number().positive().optional(),
});

export interface ResolvedPolicy {
  approval: Approval;
  skip: string[];
  pin: string | null;
  checkOnStart: boolean;
  /** Whether a folder with no model waits the start-up delay too (the host set it explicitly). */
  startupDelayWhenEmpty: boolean;
  schedule: SchedulePolicy | null;
  downloadWhen: Record<string, DownloadCondition>;
  avoidMeteredConnection: boolean;
  conditionsPollMs: number;
}

/**
 * Validates a policy and fills in the defaults.
 * @example
 * resolvePolicy({ approval: { major: 'ask' }, pin: '^2' })
 */
export function resolvePolicy(policy: UpdatePolicy = {}): ResolvedPolicy {
  const parsed = policySchema.safeParse(policy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UpdateError('INVALID_ARGUMENT', `policy.${issue.path.join('.') || '(root)'} ${issue.message}. See the README's "Update policy" section.`);
  }
  const explicitStartup = policy.schedule ? policy.schedule.startupDelayMs !== undefined || policy.schedule.startupSpreadMs !== undefined : false;
  return {
    approval: policy.approval ?? 'auto',
    skip: policy.skip ?? [],
    pin: policy.pin ?? null,
    checkOnStart: policy.checkOnStart ?? true,
    startupDelayWhenEmpty: explicitStartup,
    schedule: policy.schedule === false ? null : { ...DEFAULT_SCHEDULE, ...(policy.checkOnStart === true ? { startupSpreadMs: 0 } : {}), ...policy.schedule },
    downloadWhen: policy.downloadWhen ?? {},
    avoidMeteredConnection: policy.avoidMeteredConnection ?? false,
    conditionsPollMs: policy.conditionsPollMs ?? 60_000,
  };
}
