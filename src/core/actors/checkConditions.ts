/**
 * Evaluates the host's download conditions; the chart waits, naming them, while any is not met.
 */
import { fromPromise } from 'xstate';
import type { ConditionsOutput } from '../../../machines/types.js';
import type { DownloadCondition } from '../updatePolicy.js';

/** The browser's view of the link, where it has one (Chromium's Network Information API). */
function meteredConnection(): boolean {
  const connection = (globalThis as { navigator?: { connection?: { saveData?: boolean; type?: string } } }).navigator?.connection;
  return connection !== undefined && (connection.saveData === true || connection.type === 'cellular');
}

export function createCheckConditions(conditions: Record<string, DownloadCondition>, avoidMetered: boolean) {
  return fromPromise<ConditionsOutput, void>(async () => {
    const unmet: string[] = [];
    if (avoidMetered && meteredConnection()) unmet.push('unmetered connection');
    for (const [name, condition] of Object.entries(conditions)) {
      let verdict: boolean | string;
      try {
        verdict = await condition();
      } catch (error) {
        verdict = `${name} (threw: ${(error as Error)?.message ?? error})`;
      }
      if (verdict === false) unmet.push(name);
      else if (typeof verdict === 'string') unmet.push(verdict);
    }
    return { unmet };
  });
}
