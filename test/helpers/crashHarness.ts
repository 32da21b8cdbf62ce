/**
 * The kill test's machinery, shared by `npm test` (a fixed number of kills) and `npm run crash-test`:
 * a child process updates a model folder and is SIGKILLed at a random instant; a fresh updater then
 * recovers the folder and the invariants are checked.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createModelUpdater } from '../../src/createModelUpdater.js';
import { readLogFile } from '../../src/log/fileEventLog.js';
import { verifyLog } from '../../src/log/record.js';
import { replay } from '../../src/log/replay.js';
import { publish } from '../../src/manifest/publish.js';
import { startTestServer, type TestServer } from './testServer.js';

export interface CrashWorld {
  root: string;
  manifestUrl: string;
  server: TestServer;
  /** A folder with 1.0.0 installed, copied for every run. */
  template: string;
  victim: string;
  /** Milliseconds an uninterrupted update takes after the victim says "ready". */
  updateMs: number;
  close(): Promise<void>;
}

export interface CrashRun {
  run: number;
  killAfterMs: number;
  /** The last record the victim journaled before it died. */
  lastRecord: string;
  activeBefore: string | null;
  problems: string[];
}

export { seededRandom } from '../../machines/seededRandom.js';

function runVictim(world: Pick<CrashWorld, 'victim' | 'manifestUrl'>, dir: string, killAfterMs: number | null) {
  return new Promise<{ killed: boolean; elapsedMs: number; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [world.victim, world.manifestUrl, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let readyAt = 0;
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      if (!readyAt && stdout.includes('ready')) {
        readyAt = performance.now();
        if (killAfterMs !== null) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') return resolve({ killed: true, elapsedMs: performance.now() - readyAt, stdout });
      if (code !== 0) return reject(new Error(`the victim exited with ${code}: ${stderr}`));
      resolve({ killed: false, elapsedMs: performance.now() - readyAt, stdout });
    });
  });
}

export async function createCrashWorld(): Promise<CrashWorld> {
  const root = await mkdtemp(join(tmpdir(), 'model-updater-crash-'));
  const site = join(root, 'site');
  for (const [version, files] of [
    ['1.0.0', { 'model.bin': 512 * 1024 }],
    ['1.1.0', { 'model.bin': 6 * 1024 * 1024, 'vocab/tokens.bin': 1024 * 1024 }],
  ] as const) {
    const source = join(root, 'source', version);
    for (const [name, size] of Object.entries(files)) {
      await mkdir(join(source, name, '..'), { recursive: true });
      await writeFile(join(source, name), randomBytes(size));
    }
    if (version === '1.0.0') await publish({ out: site, version, inputs: [source] });
  }
  const server = await startTestServer({ root: site });
  const manifestUrl = `${server.url}manifest.json`;
  const template = join(root, 'template');
  const installer = createModelUpdater({ manifestUrl, dir: template, policy: { checkOnStart: false }, allowUnsigned: true });
  await installer.start();
  await installer.check();
  installer.stop();
  await publish({ out: site, version: '1.1.0', inputs: [join(root, 'source', '1.1.0')] });

  // One bundled file starts in a fraction of the time tsx needs, so a kill lands in the update, not the boot.
  const victim = join(root, 'victim.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('./crashVictim.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: victim,
    logLevel: 'silent',
  });

  // The median of three uninterrupted updates: one slow run on a busy machine must not set the scale.
  const timings: number[] = [];
  for (let run = 0; run < 3; run++) {
    const calibration = join(root, `calibration-${run}`);
    await cp(template, calibration, { recursive: true });
    timings.push((await runVictim({ victim, manifestUrl }, calibration, null)).elapsedMs);
  }
  const elapsedMs = timings.sort((a, b) => a - b)[1]!;
  return {
    root,
    manifestUrl,
    server,
    template,
    victim,
    updateMs: elapsedMs,
    async close() {
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function sha256(path: string) {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** The active version is complete and every file verifies; returns problems found. */
async function checkActive(dir: string, expectVersions: string[]): Promise<{ version: string | null; problems: string[] }> {
  const problems: string[] = [];
  const pointer = JSON.parse(await readFile(join(dir, 'active.json'), 'utf8').catch(() => 'null'));
  if (!pointer) return { version: null, problems: ['no active version'] };
  const version = pointer.active.version as string;
  if (!expectVersions.includes(version)) problems.push(`active version ${version} is not one of ${expectVersions}`);
  for (const file of pointer.active.files as Array<{ path: string; sha256: string }>) {
    const got = await sha256(join(dir, 'versions', version, file.path)).catch(() => 'missing');
    if (got !== file.sha256) problems.push(`${version}/${file.path} does not verify (${got})`);
  }
  return { version, problems };
}

/** One kill at a random instant, then recovery and the invariants. */
export async function crashOnce(world: CrashWorld, run: number, random: () => number): Promise<CrashRun> {
  const runRoot = join(world.root, `run-${run}`);
  const dir = join(runRoot, 'models');
  await cp(world.template, dir, { recursive: true });
  const killAfterMs = Math.round(random() * world.updateMs * 0.85);
  const { killed } = await runVictim(world, dir, killAfterMs);
  const problems: string[] = [];

  const logged = readLogFile(join(dir, 'events.log'));
  const lastRecord = logged.records.at(-1)?.type ?? 'none';
  if (!verifyLog(logged.records).ok) problems.push('the log left by the victim does not verify');
  const before = await checkActive(dir, ['1.0.0', '1.1.0']);
  problems.push(...before.problems.map((p) => `after the kill: ${p}`));

  const updater = createModelUpdater({ manifestUrl: world.manifestUrl, dir, policy: { checkOnStart: false }, retry: { manifestRetries: 0 }, allowUnsigned: true });
  try {
    await updater.start();
    const recovered = updater.getSnapshot();
    if (!verifyLog(updater.log.records()).ok) problems.push('the log does not verify after recovery');
    if (JSON.stringify(replay(updater.log.records())?.context) !== JSON.stringify(recovered.context)) {
      problems.push('replay differs from the recovered state');
    }
    const result = await updater.check();
    if (updater.active?.version !== '1.1.0') problems.push(`after recovery and a check, active is ${updater.active?.version} (${result.outcome} ${result.error?.code ?? ''})`);
    const after = await checkActive(dir, ['1.1.0']);
    problems.push(...after.problems);
    const staged = await readdir(join(dir, 'staging'), { recursive: true });
    if (staged.length) problems.push(`staging not clean after the update: ${staged.join(', ')}`);
    const outside = (await readdir(runRoot)).filter((name) => name !== 'models');
    if (outside.length) problems.push(`files written outside dir: ${outside.join(', ')}`);
  } catch (error) {
    problems.push(`recovery failed: ${(error as Error).message}`);
  } finally {
    updater.stop();
  }
  await rm(runRoot, { recursive: true, force: true });
  return { run, killAfterMs: killed ? killAfterMs : -1, lastRecord, activeBefore: before.version, problems };
}
