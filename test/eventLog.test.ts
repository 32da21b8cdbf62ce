/**
 * The event log's integrity guarantees, through its public functions, on a log written by a real update.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelUpdater, type ModelUpdater } from '../src/node/createModelUpdater.js';
import { UpdateError } from '../src/core/errors.js';
import { FileEventLog, readLogFile } from '../src/node/fileEventLog.js';
import { type LogRecord } from '../src/core/log/record.js';
import { verifyLog } from '../src/core/log/chain.js';
import { replay } from '../src/core/log/replay.js';
import { publish } from '../src/publish/publish.js';
import { LOG_FILE } from '../src/node/fsModelStore.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const PROJECT = fileURLToPath(new URL('..', import.meta.url));

let tmp: string;
let site: string;
let dir: string;
let server: TestServer;
let manifestUrl: string;
/** The log file's lines (without the final newline) right after the update. */
let lines: string[];
let records: LogRecord[];
/** The live snapshot after the update settled, in JSON form. */
let live: { value: unknown; context: Record<string, unknown> };
let liveActive: string | undefined;
let scratchCount = 0;

function plain(snapshot: { value: unknown; context: unknown }) {
  return JSON.parse(JSON.stringify({ value: snapshot.value, context: snapshot.context })) as { value: unknown; context: any };
}

/** A fresh folder holding `events.log` with these lines; returns the folder. */
async function scratchLog(content: string[] | string): Promise<string> {
  const folder = path.join(tmp, `scratch-${scratchCount++}`);
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, LOG_FILE), typeof content === 'string' ? content : content.map((line) => `${line}\n`).join(''));
  return folder;
}

function withRecord(index: number, change: (record: LogRecord) => LogRecord): string[] {
  return lines.map((line, i) => (i === index ? JSON.stringify(change(JSON.parse(line) as LogRecord)) : line));
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-log-'));
  site = path.join(tmp, 'site');
  dir = path.join(tmp, 'models');
  const source = path.join(tmp, 'source');
  await mkdir(path.join(source, 'weights'), { recursive: true });
  await writeFile(path.join(source, 'model.bin'), randomBytes(1024 * 1024));
  await writeFile(path.join(source, 'weights', 'extra.bin'), randomBytes(300 * 1024));
  await publish({ out: site, version: '1.0.0', inputs: [source] });
  server = await startTestServer({ root: site });
  manifestUrl = `${server.url}manifest.json`;

  const updater = createModelUpdater({ manifestUrl, dir, policy: { checkOnStart: false }, allowUnsigned: true });
  try {
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'activated', error: null });
    live = plain(updater.getSnapshot());
    liveActive = updater.active?.version;
  } finally {
    updater.stop();
  }
  const text = await readFile(path.join(dir, LOG_FILE), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  lines = text.slice(0, -1).split('\n');
  records = readLogFile(path.join(dir, LOG_FILE)).records;
  // Enough records that "the middle" means something.
  expect(records.length).toBeGreaterThanOrEqual(8);
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('verifyLog', () => {
  it('accepts the log of a real update', () => {
    const result = verifyLog(records);
    expect(result).toEqual({ ok: true, count: records.length, head: records.at(-1)!.hash });
    expect(records.map((record) => record.seq)).toEqual(records.map((_, i) => i));
    expect(records[0]).toMatchObject({ v: 2, type: 'updater.created' });
  });

  it('names the record whose data was edited', () => {
    const index = records.findIndex((record) => record.type === 'check.requested');
    expect(index).toBeGreaterThan(0);
    const edited = withRecord(index, (record) => ({ ...record, data: { ...record.data, trigger: 'scheduled' } }));
    const result = verifyLog(edited.map((line) => JSON.parse(line) as LogRecord));
    expect(result).toMatchObject({ ok: false, seq: index });
  });

  it('names exactly the edited record, wherever it is', () => {
    for (let index = 0; index < records.length; index++) {
      const edited = withRecord(index, (record) => ({ ...record, ts: new Date(Date.parse(record.ts) + 1).toISOString() }));
      const result = verifyLog(edited.map((line) => JSON.parse(line) as LogRecord));
      expect(result, `record ${index} edited`).toMatchObject({ ok: false, seq: index });
    }
  });

  it('names the first bad record when a middle record is deleted', () => {
    const index = Math.floor(records.length / 2);
    const result = verifyLog(records.filter((_, i) => i !== index));
    expect(result).toMatchObject({ ok: false, seq: index });
  });

  it('names the first bad record when two records are swapped', () => {
    const index = Math.floor(records.length / 2);
    const swapped = [...records];
    [swapped[index], swapped[index + 1]] = [swapped[index + 1]!, swapped[index]!];
    expect(verifyLog(swapped)).toMatchObject({ ok: false, seq: index });
  });

  it('the CLI `log --verify` fails and names the record', async () => {
    const index = Math.floor(records.length / 2);
    const folder = await scratchLog(withRecord(index, (record) => ({ ...record, data: { ...record.data, injected: true } })));
    const text = await runCli(['log', '--dir', folder, '--verify']);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toContain(`record ${index}`);

    const json = await runCli(['log', '--dir', folder, '--verify', '--json']);
    expect(json.code, json.stderr).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, seq: index, error: { code: 'LOG_CORRUPT' } });

    const intact = await runCli(['log', '--dir', await scratchLog(lines), '--verify']);
    expect(intact.code, intact.stderr).toBe(0);
  });
});

describe('FileEventLog.open', () => {
  it('cuts a torn last line, records the cut, and the chain verifies', async () => {
    const next = JSON.stringify({ seq: records.length, ts: new Date().toISOString(), session: null, type: 'check.requested', data: {}, prev: records.at(-1)!.hash, hash: 'x' });
    const torn = next.slice(0, Math.floor(next.length / 2));
    const folder = await scratchLog(lines);
    const file = path.join(folder, LOG_FILE);
    await appendFile(file, torn);

    const read = readLogFile(file);
    expect(read.records).toEqual(records);
    expect(read.tornTailBytes).toBe(Buffer.byteLength(torn));

    const log = FileEventLog.open(file);
    try {
      const reopened = log.records();
      expect(reopened).toHaveLength(records.length + 1);
      expect(reopened.slice(0, -1)).toEqual(records);
      expect(reopened.at(-1)).toMatchObject({ seq: records.length, type: 'log.truncated', prev: records.at(-1)!.hash, data: { bytes: Buffer.byteLength(torn) } });
      expect(verifyLog(reopened)).toMatchObject({ ok: true, count: records.length + 1 });
    } finally {
      log.close();
    }

    // On disk: the torn bytes are gone and the file ends with the truncation record.
    const after = readLogFile(file);
    expect(after.tornTailBytes).toBe(0);
    expect(after.records).toHaveLength(records.length + 1);
    expect(verifyLog(after.records).ok).toBe(true);
    const text = await readFile(file, 'utf8');
    expect(text.startsWith(lines.map((line) => `${line}\n`).join(''))).toBe(true);
    expect(text).not.toContain(torn);
    // The truncation record is bookkeeping: replay ignores it.
    expect(plain(replay(after.records)!)).toEqual(plain(replay(records)!));
  });

  it('throws LOG_CORRUPT on damage before the last line', async () => {
    const index = Math.floor(lines.length / 2);
    const damaged = [...lines.slice(0, index), '{"seq": garbage', ...lines.slice(index)];
    const file = path.join(await scratchLog(damaged), LOG_FILE);
    const before = await readFile(file, 'utf8');

    const fromRead = thrown(() => readLogFile(file));
    expect(fromRead).toBeInstanceOf(UpdateError);
    expect((fromRead as UpdateError).code).toBe('LOG_CORRUPT');

    const fromOpen = thrown(() => FileEventLog.open(file));
    expect(fromOpen).toBeInstanceOf(UpdateError);
    expect((fromOpen as UpdateError).code).toBe('LOG_CORRUPT');
    // Refusing to open must not "repair" the file.
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('throws LOG_CORRUPT on a log whose chain is broken', async () => {
    const file = path.join(await scratchLog(withRecord(2, (record) => ({ ...record, type: 'cancel.requested' }))), LOG_FILE);
    const error = thrown(() => FileEventLog.open(file));
    expect(error).toBeInstanceOf(UpdateError);
    expect((error as UpdateError).code).toBe('LOG_CORRUPT');
    expect((error as UpdateError).message).toContain('record 2');
  });

  it('refuses a symbolic link in place of the log with STORAGE_FAILED, and appends nothing through it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'model-updater-loglink-'));
    try {
      const outside = path.join(dir, 'outside.log');
      await writeFile(outside, '');
      await mkdir(path.join(dir, 'models'));
      await symlink(outside, path.join(dir, 'models', LOG_FILE));
      const error = thrown(() => FileEventLog.open(path.join(dir, 'models', LOG_FILE)));
      expect(error).toBeInstanceOf(UpdateError);
      expect((error as UpdateError).code).toBe('STORAGE_FAILED');
      expect((error as UpdateError).message).toContain('symbolic link');
      expect(await readFile(outside, 'utf8')).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('replay', () => {
  it('rebuilds the live snapshot, the same every time', () => {
    const first = replay(records);
    expect(first).not.toBeNull();
    expect(plain(first!)).toEqual(live);
    expect(plain(replay(records)!)).toEqual(live);
    expect(live.value).toBe('active');
  });

  it('a new updater on the same folder starts where the last one stopped', async () => {
    let updater: ModelUpdater | undefined;
    try {
      updater = createModelUpdater({ manifestUrl, dir, policy: { checkOnStart: false }, allowUnsigned: true });
      await updater.start();
      const restored = plain(updater.getSnapshot());
      expect(restored.value).toEqual(live.value);
      // The start itself is journaled (updater.started, then active.loaded), and the load ends the version's probation.
      expect(live.context.probation).toMatchObject({ version: '1.0.0', loads: 1 });
      expect(restored.context).toEqual({ ...live.context, probation: null });
      expect(liveActive).toBe('1.0.0');
      expect(updater.active?.version).toBe(liveActive);
      expect(updater.active?.path).toBe(path.join(dir, 'versions', '1.0.0'));
      const added = updater.log.records().slice(records.length);
      expect(updater.log.records().slice(0, records.length)).toEqual(records);
      expect(added.map((record) => record.type)).toEqual(['updater.started', 'active.loaded']);
      expect(plain(replay(updater.log.records())!)).toEqual(restored);
    } finally {
      updater?.stop();
    }
    expect(verifyLog(readLogFile(path.join(dir, LOG_FILE)).records).ok).toBe(true);
  });
});

describe('journaled errors', () => {
  it('an untyped error thrown by an actor is journaled with the code the chart gives it', async () => {
    const { eventData } = await import('../src/core/log/replay.js');
    expect(eventData({ type: 'xstate.error.actor.loadModel', error: new Error('bad weights') } as never)).toEqual({
      error: { code: 'LOAD_FAILED', message: 'bad weights' },
    });
    expect(eventData({ type: 'xstate.error.actor.fetchManifest', error: 'offline' } as never)).toMatchObject({ error: { code: 'NETWORK_UNAVAILABLE' } });
  });
});
