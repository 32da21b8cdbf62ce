/**
 * A long event log in two segments, as months on a device leave: a real install of 1.0.0, then
 * `fillers` host events (`conditions.changed`, which the chart ignores while active), a rotation, and a
 * real update to 1.1.0 that fails its health check and is rolled back.
 */
import { join } from 'node:path';
import { FileEventLog } from '../../src/node/fileEventLog.js';
import { LIVE_SEGMENT, readAllRecords } from '../../src/node/logSegments.js';
import { checkpointData, replay } from '../../src/core/log/replay.js';
import { CHECKPOINT } from '../../src/core/log/record.js';
import type { World } from './fixtures.js';

const loader = { load: (model: { version: string }) => model.version, healthCheck: (model: { version: string }) => model.version !== '1.1.0' };

/** Writes the log into `world.dir`; returns how many records it holds. */
export async function writeLongLog(world: World, fillers: number): Promise<number> {
  await world.publishVersion('1.0.0', { bytes: 4_000 });
  const first = world.updater({ loader });
  await first.start();
  await first.check();
  first.stop();

  const log = FileEventLog.open(join(world.dir, LIVE_SEGMENT));
  for (let index = 0; index < fillers; index++) log.append('conditions.changed', null, {});
  log.rotate(CHECKPOINT, null, checkpointData(replay([...readAllRecords(world.dir)])!));
  log.close();

  await world.publishVersion('1.1.0', { bytes: 4_000 });
  const second = world.updater({ loader });
  await second.start();
  const outcome = await second.check();
  if (outcome.outcome !== 'rolled-back') throw new Error(`expected the long log to end rolled back, got ${outcome.outcome}`);
  second.stop();
  let count = 0;
  for (const _ of readAllRecords(world.dir)) count += 1;
  return count;
}
