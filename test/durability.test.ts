import { spawn } from 'node:child_process';
import { lutimes, mkdir, readdir, readFile, symlink, writeFile, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { verifyLog } from '../src/core/log/chain.js';
import { replay } from '../src/core/log/replay.js';
import { LOCK_FILE } from '../src/node/dirLock.js';
import { quarantineLog } from '../src/node/quarantineLog.js';
import { createWorld, plain, type World } from './helpers/fixtures.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});


/** A pid that is certainly dead: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('locking', () => {
  it('a second updater on the same folder gets LOCKED until the first stops', async () => {
    await world.publishVersion('1.0.0');
    const first = world.updater();
    await first.start();
    const second = world.updater();
    await expect(second.start()).rejects.toMatchObject({ code: 'LOCKED' });
    first.stop();
    await second.start();
    expect(await second.check()).toMatchObject({ outcome: 'activated' });
  });

  it("takes over a dead holder's lock at once, by pid", async () => {
    await world.publishVersion('1.0.0');
    const pid = await deadPid();
    const updater = world.updater();
    // A lock left by a killed process on this host, its lease still running.
    await mkdir(world.dir, { recursive: true });
    await writeFile(join(world.dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), token: 'old', leaseUntil: Date.now() + 60_000 }));
    await expect(updater.start()).resolves.toBeUndefined();
  });

  it('does not take over a lock still empty (its holder is writing it); one left empty for 10 s is stale', async () => {
    await world.publishVersion('1.0.0');
    const probe = world.updater();
    await probe.start();
    probe.stop();
    const lock = join(world.dir, LOCK_FILE);
    await writeFile(lock, '');
    await expect(world.updater().start()).rejects.toMatchObject({ code: 'LOCKED' });
    const old = new Date(Date.now() - 11_000);
    await utimes(lock, old, old);
    await expect(world.updater().start()).resolves.toBeUndefined();
  });

  it('sweeps what a process killed while taking the lock left beside it: only old regular files, never through a link', async () => {
    await world.publishVersion('1.0.0');
    const probe = world.updater();
    await probe.start();
    probe.stop();
    const old = new Date(Date.now() - 11_000);
    const at = (name: string) => join(world.dir, name);
    // Killed between writing its own lock and linking it, or after moving a stale lock aside.
    for (const name of [`${LOCK_FILE}.3f6c1d52-0000-4000-8000-000000000000`, `${LOCK_FILE}.takeover-9a1b`]) {
      await writeFile(at(name), '{"pid":1}');
      await utimes(at(name), old, old);
    }
    // A racer writing its own right now, and a link planted by another local user.
    await writeFile(at(`${LOCK_FILE}.fresh`), '{"pid":2}');
    const outside = join(world.root, 'outside.txt');
    await writeFile(outside, 'not ours');
    await symlink(outside, at(`${LOCK_FILE}.planted`));
    await lutimes(at(`${LOCK_FILE}.planted`), old, old);
    const updater = world.updater();
    await updater.start();
    updater.stop();
    expect((await readdir(world.dir)).filter((name) => name.startsWith(`${LOCK_FILE}.`)).sort()).toEqual([`${LOCK_FILE}.fresh`, `${LOCK_FILE}.planted`]);
    expect(await readFile(outside, 'utf8')).toBe('not ours');
  });

  it('respects a live lock on another host until its lease expires', async () => {
    await world.publishVersion('1.0.0');
    const probe = world.updater();
    await probe.start();
    probe.stop();
    const lock = join(world.dir, LOCK_FILE);
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-host', token: 't', leaseUntil: Date.now() + 60_000 }));
    await expect(world.updater().start()).rejects.toMatchObject({ code: 'LOCKED' });
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-host', token: 't', leaseUntil: Date.now() - 1 }));
    await expect(world.updater().start()).resolves.toBeUndefined();
  });
});

describe('start-up recovery', () => {
  it('undoes an update cut off in migrating before the switch, and retries that build once', async () => {
    await world.publishVersion('1.0.0');
    const first = world.updater({ loader: { load: (m) => (m.version === '1.1.0' ? new Promise(() => {}) : m.version) } });
    await first.start();
    await first.check();
    await world.publishVersion('1.1.0');
    // The process dies before this check settles: its promise rejects with CANCELLED on stop().
    const cut = first.check().catch((error: unknown) => error);
    await new Promise<void>((resolve) => {
      const off = first.subscribe((s) => s.matches({ migrating: 'loading' }) && (off(), resolve()));
    });
    first.stop(); // the process dies while the host loads 1.1.0
    expect(await cut).toMatchObject({ code: 'CANCELLED' });

    const second = world.updater({ loader: { load: (m) => m.version } });
    await second.start();
    const snapshot = second.getSnapshot();
    expect(snapshot.matches('rolledBack')).toBe(true);
    expect(snapshot.context.lastResult).toMatchObject({ outcome: 'rolled-back', error: { code: 'INTERRUPTED' } });
    expect(second.active?.version).toBe('1.0.0');
    expect(await readdir(join(world.dir, 'versions'))).toEqual(['1.0.0']);
    expect(verifyLog(second.log.records()).ok).toBe(true);
    expect(plain(replay(second.log.records())!)).toEqual(plain(second.getSnapshot()));
    // An interruption is not the build's fault: it gets one more try.
    expect(await second.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  });
});

describe('trial activation', () => {
  async function updatedTo110(options: Parameters<World['updater']>[0] = {}) {
    await world.publishVersion('1.0.0');
    const updater = world.updater({ loader: { load: (m) => m.version }, ...options });
    await updater.start();
    await updater.check();
    await world.publishVersion('1.1.0');
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(updater.getSnapshot().context.probation).toMatchObject({ version: '1.1.0', previous: { version: '1.0.0' } });
    return updater;
  }
  /** A host whose process dies while loading 1.1.0. */
  const crashingLoader = { load: (m: { version: string }) => { if (m.version === '1.1.0') throw new Error('segfault in the runtime'); return m.version; } };

  it('a build whose load keeps crashing the host is rolled back after maxFailedStarts and not fetched again', async () => {
    const updater = await updatedTo110({ probation: { maxFailedStarts: 2 } });
    updater.stop();
    for (let start = 1; start <= 2; start++) {
      const crashing = world.updater({ loader: crashingLoader, probation: { maxFailedStarts: 2 } });
      await expect(crashing.start()).rejects.toMatchObject({ code: 'LOAD_FAILED' });
      expect(crashing.getSnapshot().context.probation).toMatchObject({ failedStarts: start });
      crashing.stop();
    }
    const recovered = world.updater({ loader: crashingLoader, probation: { maxFailedStarts: 2 } });
    await recovered.start();
    expect(recovered.active?.version).toBe('1.0.0');
    expect(recovered.model).toBe('1.0.0');
    expect(recovered.getSnapshot().context.lastResult).toMatchObject({ outcome: 'rolled-back', error: { code: 'PROBATION_FAILED' } });
    const downloads = world.modelRequests().length;
    expect(await recovered.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(world.modelRequests().length).toBe(downloads);
    expect(plain(replay(recovered.log.records())!)).toEqual(plain(recovered.getSnapshot()));
  });

  it('confirm() ends probation: later failed starts do not roll back', async () => {
    const updater = await updatedTo110({ probation: { maxFailedStarts: 1 } });
    updater.confirm();
    expect(updater.getSnapshot().context.probation).toBeNull();
    updater.stop();
    for (let start = 0; start < 2; start++) {
      const crashing = world.updater({ loader: crashingLoader, probation: { maxFailedStarts: 1 } });
      await expect(crashing.start()).rejects.toMatchObject({ code: 'LOAD_FAILED' });
      expect(crashing.active?.version).toBe('1.1.0');
      crashing.stop();
    }
  });

  it('a successful load on the next start, or the time window, ends probation', async () => {
    const clock = new SimulatedClock();
    const updater = await updatedTo110({ clock, probation: { confirmAfterMs: 60_000 } });
    clock.increment(59_999);
    expect(updater.getSnapshot().context.probation).not.toBeNull();
    clock.increment(1);
    expect(updater.getSnapshot().context.probation).toBeNull();
    expect(updater.log.records().at(-1)).toMatchObject({ type: 'version.confirmed', data: { reason: 'time' } });

    await world.publishVersion('1.2.0');
    await updater.check();
    updater.stop();
    const restarted = world.updater({ loader: { load: (m) => m.version } });
    await restarted.start();
    expect(restarted.getSnapshot().context.probation).toBeNull();
    expect(restarted.active?.version).toBe('1.2.0');
  });
});

describe('checkpoints', () => {
  it('bound start-up: replay from the last checkpoint equals the full fold, and a bad checkpoint is skipped', async () => {
    await world.publishVersion('1.0.0');
    const updater = world.updater({ checkpointEvery: 5 });
    await updater.start();
    await updater.check();
    for (let i = 0; i < 4; i++) await updater.check();
    const records = [...updater.log.records()];
    const checkpoints = records.filter((r) => r.type === 'log.checkpoint');
    expect(checkpoints.length).toBeGreaterThan(1);
    expect(verifyLog(records).ok).toBe(true);
    const live = plain(updater.getSnapshot());
    expect(plain(replay(records)!)).toEqual(live);
    expect(plain(replay(records, undefined, { fromCheckpoint: false })!)).toEqual(live);

    // A checkpoint from another schema, or naming a state the chart no longer has, is not trusted.
    const last = records.findLastIndex((r) => r.type === 'log.checkpoint');
    for (const data of [
      { ...records[last]!.data, schemaVersion: 0 },
      { ...records[last]!.data, value: 'aStateThatIsGone' },
    ]) {
      const edited = records.map((r, i) => (i === last ? { ...r, data } : r));
      expect(plain(replay(edited)!)).toEqual(live);
    }
  });
});

describe('a damaged log', () => {
  it('refuses to start with LOG_CORRUPT; quarantining it starts a new chain and keeps the models', async () => {
    await world.install('1.0.0');
    const path = join(world.dir, 'events.log');
    const lines = (await readFile(path, 'utf8')).split('\n');
    lines[2] = lines[2]!.replace('"check.requested"', '"check.done"');
    await writeFile(path, lines.join('\n'));

    await expect(world.updater().start()).rejects.toMatchObject({ code: 'LOG_CORRUPT', message: expect.stringContaining('record 2') });
    const report = await quarantineLog(world.dir);
    expect(report.reason).toContain('record 2');
    expect(await readFile(report.movedTo, 'utf8')).toContain('check.done');

    const after = world.updater();
    await after.start();
    expect(after.active?.version).toBe('1.0.0');
    expect(after.log.records()[0]).toMatchObject({ type: 'log.quarantined', data: { previous: report.movedTo } });
    expect(verifyLog(after.log.records()).ok).toBe(true);
    await world.publishVersion('1.1.0');
    expect(await after.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await expect(quarantineLog(world.dir)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('two processes on one folder', () => {
  function cliUpdate(): Promise<{ code: number | null; json: { ok: boolean; outcome?: string; error?: { code: string } } }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'update', '--manifest', world.manifestUrl, '--dir', world.dir, '--allow-unsigned', '--json'], {
        cwd: join(import.meta.dirname, '..'),
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, json: JSON.parse(stdout.trim().split('\n').at(-1)!) }));
    });
  }

  it('never interleave: each run either updates or reports LOCKED, and the end state is that of one run', async () => {
    await world.publishVersion('1.0.0', { bytes: 3_000_000 });
    const runs = await Promise.all([cliUpdate(), cliUpdate(), cliUpdate()]);
    for (const run of runs) {
      if (run.code === 0) expect(run.json.outcome).toMatch(/activated|up-to-date/);
      else expect(run.json.error?.code).toBe('LOCKED');
    }
    expect(runs.filter((run) => run.json.outcome === 'activated')).toHaveLength(1);
    expect(world.modelRequests()).toHaveLength(1);
    const updater = world.updater();
    await updater.start();
    expect(updater.active?.version).toBe('1.0.0');
    expect(verifyLog(updater.log.records()).ok).toBe(true);
    expect(updater.log.records().filter((r) => r.type === 'version.activated')).toHaveLength(1);
  });
});
