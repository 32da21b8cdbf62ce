import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUpdater, type ModelUpdater } from '../src/core/createUpdater.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { ERROR_CODES, isUpdateError } from '../src/core/errors.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { verifyLog } from '../src/core/log/chain.js';
import { replay } from '../src/core/log/replay.js';
import { acquireDirLock } from '../src/node/dirLock.js';
import { FsModelStore, LOG_FILE } from '../src/node/fsModelStore.js';
import type { ModelStore } from '../src/core/ports/modelStore.js';
import type { StagingArea } from '../src/core/ports/stagingArea.js';
import { FileStagingArea } from '../src/node/fileStagingArea.js';
import { createNodeTransport } from '../src/node/nodeTransport.js';
import { createWorld, plain, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

/** The store's writes, and the staging area's (`open`: the downloaded bytes). */
const WRITES = ['open', 'discardStaging', 'promote', 'removeVersion', 'collectGarbage', 'writePointer'] as const;
type Mode = 'once' | 'from-then-on';

/** The real file store, with the k-th write failing like a full or broken disk (or every write from it on). */
function faultyStore(dir: string, failAt: number, code: 'ENOSPC' | 'EIO', mode: Mode) {
  let writes = 0;
  const failed: string[] = [];
  const faulty = <T extends object>(target: T): T => new Proxy(target, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || !(WRITES as readonly (string | symbol)[]).includes(name)) return value;
      return async (...args: unknown[]) => {
        writes++;
        if (writes === failAt || (mode === 'from-then-on' && writes > failAt)) {
          failed.push(String(name));
          throw Object.assign(new Error(`${code}: simulated ${code === 'ENOSPC' ? 'no space left on device' : 'i/o error'}, ${String(name)}`), { code });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: faulty<ModelStore>(new FsModelStore(dir)), staging: faulty<StagingArea>(new FileStagingArea(dir)), failed, writes: () => writes };
}

function updaterOn({ store, staging }: { store: ModelStore; staging: StagingArea }): ModelUpdater {
  return createUpdater(
    { manifestUrl: world.manifestUrl, appVersion: '1.0.0', policy: { checkOnStart: false }, allowUnsigned: true },
    { store, staging, transport: createNodeTransport(), openLog: (now) => FileEventLog.open(join(world.dir, LOG_FILE), now), lock: () => acquireDirLock(world.dir) },
  );
}

/** After a fresh start on a healthy disk: one active version that verifies, log and pointer agreeing. */
async function expectConsistentAfterRestart(allowed: string[]) {
  const updater = world.updater();
  await updater.start();
  try {
    const pointer = await new FsModelStore(world.dir).readPointer();
    const snapshot = updater.getSnapshot();
    // No "activated" record without the switch, no switch without the record.
    expect(snapshot.context.active?.version).toBe(pointer?.active.version);
    expect(allowed).toContain(pointer?.active.version);
    expect(verifyLog(updater.log.records()).ok).toBe(true);
    expect(plain(replay(updater.log.records())!)).toEqual(plain(snapshot));
    expect(await updater.check()).toMatchObject({ outcome: expect.stringMatching(/activated|up-to-date/) });
    expect(updater.active?.version).toBe('1.1.0');
  } finally {
    updater.stop();
  }
}

describe('faults injected at every write of an update', () => {
  const cases = (['once', 'from-then-on'] as Mode[]).flatMap((mode) =>
    (['ENOSPC', 'EIO'] as const).flatMap((code) => [1, 2, 3, 4, 5, 6].map((failAt) => ({ mode, code, failAt }))),
  );

  it.each(cases)('$code at write $failAt ($mode): a typed error, the old version or the finished update, a consistent log', async ({ mode, code, failAt }) => {
    await world.install('1.0.0');
    await world.publishVersion('1.1.0');

    const faulty = faultyStore(world.dir, failAt, code, mode);
    const updater = updaterOn(faulty);
    await updater.start();
    const result = await updater.check();
    updater.stop();
    if (faulty.failed.length === 0) {
      expect(failAt).toBeGreaterThan(faulty.writes()); // the update needed fewer writes: nothing to inject
    } else if (result.outcome !== 'activated') {
      expect(result.error && ERROR_CODES).toContain(result.error!.code);
      expect(result.error!.code).not.toBe('UNKNOWN');
      expect(result.error!.message).toMatch(code === 'ENOSPC' ? /space|ENOSPC/i : /EIO|i\/o/i);
    }
    await expectConsistentAfterRestart(['1.0.0', '1.1.0']);
  });
});

describe('the event log cannot be written', () => {
  it('stops the updater with STORAGE_FAILED; a restart finds log and pointer consistent', async () => {
    await world.install('1.0.0');
    await world.publishVersion('1.1.0');

    for (let failAt = 1; failAt <= 12; failAt++) {
      let appends = 0;
      const updater = createUpdater(
        { manifestUrl: world.manifestUrl, appVersion: '1.0.0', policy: { checkOnStart: false }, allowUnsigned: true },
        {
          store: new FsModelStore(world.dir),
          staging: new FileStagingArea(world.dir),
          transport: createNodeTransport(),
          lock: () => acquireDirLock(world.dir),
          openLog: (now) => {
            const log = FileEventLog.open(join(world.dir, LOG_FILE), now);
            const append = log.append.bind(log);
            log.append = (...args) => {
              if (++appends === failAt) throw Object.assign(new Error('EIO: fsync failed'), { code: 'EIO' });
              return append(...args);
            };
            return log;
          },
        },
      );
      const outcome = await updater
        .start()
        .then(() => updater.check())
        .then((r) => r.outcome, (error: unknown) => (isUpdateError(error) ? error.code : `untyped: ${error}`));
      updater.stop();
      expect(['STORAGE_FAILED', 'activated', 'up-to-date']).toContain(outcome);
      const restarted = createModelUpdater({ manifestUrl: world.manifestUrl, dir: world.dir, policy: { checkOnStart: false }, allowUnsigned: true });
      await restarted.start();
      const pointer = await new FsModelStore(world.dir).readPointer();
      expect(restarted.getSnapshot().context.active?.version).toBe(pointer?.active.version);
      expect(verifyLog(restarted.log.records()).ok).toBe(true);
      restarted.stop();
    }
  });
});
