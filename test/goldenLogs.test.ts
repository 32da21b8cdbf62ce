/**
 * Golden logs: every install under test/golden/<format>/ was made by the CLI of an earlier model-updater
 * (test/golden/makeGoldenInstall.ts). Each must open on this code in the state it was left in, verify,
 * and take the next update: its new records are versioned domain events appended to the old chain, and
 * the whole log replays to the live state.
 */
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createModelUpdater, readPublicKeyFile, type ModelUpdater } from '../src/index.js';
import { readLogFile } from '../src/node/fileEventLog.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { RECORD_VERSION, recordVersion } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { replay } from '../src/core/log/replay.js';
import { domainEventOf, isMachineRecord } from '../src/core/log/domainEvents.js';
import { statePath } from '../src/core/statePath.js';
import { runCli } from './helpers/runCli.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';
import { plain } from './helpers/fixtures.js';

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden');
const formats = (await readdir(GOLDEN, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);

interface Status {
  state: string;
  active: { version: string; path: string; files: unknown[] } | null;
  retained: Array<{ version: string; path: string; files: unknown[] }>;
  lastResult: unknown;
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** The status with each version's path relative to the install it lives in. */
function relative(status: Status, install: string): Status {
  const rel = <T extends { path: string }>(version: T) => ({ ...version, path: path.relative(install, version.path) });
  return { ...status, active: status.active && rel(status.active), retained: status.retained.map(rel) };
}

describe.each(formats)('the golden install %s', (format) => {
  it('opens in the state it was left in, verifies, updates with domain-format records, and replays to the live state', async () => {
    const golden = path.join(GOLDEN, format);
    const work = await mkdtemp(path.join(os.tmpdir(), `golden-${format}-`));
    cleanup.push(() => rm(work, { recursive: true, force: true }));
    const dir = path.join(work, 'install');
    const site = path.join(work, 'site');
    await cp(path.join(golden, 'install'), dir, { recursive: true });
    await cp(path.join(golden, 'site'), site, { recursive: true });
    const expected = JSON.parse(await readFile(path.join(golden, 'expected-status.json'), 'utf8')) as Status;
    // Where the golden install was made (its paths are absolute): the parent of its versions/ folder.
    const goldenInstall = path.dirname(path.dirname(expected.active!.path));
    const before = readLogFile(path.join(dir, LOG_FILE)).records;

    // As it was written: the chain verifies (the CLI checks every record) and replays to the expected state.
    const verified = await runCli(['log', '--dir', dir, '--verify', '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.json).toMatchObject({ ok: true, records: before.length });
    const status = await runCli(['status', '--dir', dir, '--json']);
    expect(status.code, status.stderr).toBe(0);
    // `staged` (activation 'next-start') came after these installs were made: nothing is staged in them.
    const { staged, ...shown } = status.json as Status & { staged?: unknown };
    expect(staged).toBeNull();
    const { staged: stagedWhenMade, ...expectedShown } = expected as Status & { staged?: unknown };
    expect(stagedWhenMade ?? null).toBeNull();
    expect(relative(shown as Status, dir)).toEqual(relative(expectedShown as Status, goldenInstall));

    const server: TestServer = await startTestServer({ root: site });
    cleanup.push(() => server.close());
    const updater = createModelUpdater({
      manifestUrl: `${server.url}/manifest.json`,
      dir,
      trustedKeys: [await readPublicKeyFile(path.join(golden, 'release.pub'))],
      policy: { checkOnStart: false },
    });
    cleanup.push(async () => updater.stop());
    await updater.start();
    const opened = updater.getSnapshot();
    expect(statePath(opened)).toBe(expected.state);
    expect(opened.context.lastResult).toEqual(expected.lastResult);
    expect(updater.active && { ...updater.active, path: path.relative(dir, updater.active.path) }).toEqual(relative(expected, goldenInstall).active);
    expect(opened.context.retained.map((kept) => [kept.version, kept.files])).toEqual(expected.retained.map((kept) => [kept.version, kept.files]));

    // A new version, published from the old service folder with the old key: its serial passes the
    // anti-rollback serial the install kept.
    const trust = JSON.parse(await readFile(path.join(dir, 'trust.json'), 'utf8')) as { serial: number };
    const model = path.join(work, 'model-9.0.0.bin');
    await writeFile(model, 'weights of 9.0.0\n');
    const published = await runCli(['publish', '--out', site, '--version', '9.0.0', '--key', path.join(golden, 'release.key'), '--expires', '2099-01-01T00:00:00.000Z', model]);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(site, 'manifest.json'), 'utf8')).signed.serial).toBeGreaterThan(trust.serial);
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '9.0.0' });

    // The old records are untouched; every one appended since is a versioned domain event, and the log
    // says where the format changed.
    const records = updater.log.records();
    expect(records.slice(0, before.length)).toEqual(before);
    const added = records.slice(before.length);
    expect(added.every((record) => record.v === RECORD_VERSION)).toBe(true);
    const format1 = before.filter((record) => recordVersion(record) === 1).length;
    if (format1 > 0 && before.every((record) => recordVersion(record) === 1)) {
      expect(added[0]).toMatchObject({ type: 'log.format', data: { from: 1, to: RECORD_VERSION, firstSeq: before.length } });
    } else {
      expect(added.some((record) => record.type === 'log.format')).toBe(false);
    }
    const types = added.filter(isMachineRecord).map((record) => record.type);
    expect(types).toEqual(expect.arrayContaining(['updater.started', 'check.requested', 'manifest.accepted', 'version.activated']));
    expect(types.some((type) => type.startsWith('xstate.') || /^[A-Z_]+$/.test(type))).toBe(false);
    const accepted = added.find((record) => record.type === 'manifest.accepted')!;
    expect(accepted.data).toMatchObject({ serial: trust.serial + 1, versions: expect.arrayContaining(['9.0.0']) });
    // Old and new records read alike.
    expect(before.filter(isMachineRecord).map((record) => domainEventOf(record).type)).toContain('version.activated');

    // The whole log, old and new, verifies and replays (from the first record) to the live state.
    const file = readLogFile(path.join(dir, LOG_FILE)).records;
    expect(file).toEqual(records);
    expect(verifyLog(file)).toMatchObject({ ok: true, count: records.length });
    expect(plain(replay(file, undefined, { fromCheckpoint: false })!)).toEqual(plain(updater.getSnapshot()));
    updater.stop();
    const reverified = await runCli(['log', '--dir', dir, '--verify', '--json']);
    expect(reverified.code, reverified.stderr).toBe(0);
    expect(reverified.json).toMatchObject({ ok: true, records: records.length });
  });
});
