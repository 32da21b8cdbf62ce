/**
 * The kill test's machinery, shared by `npm test` (every kill point once) and `npm run crash-test`
 * (every point many times): a child process runs a scenario on a model folder and SIGKILLs itself at a
 * chosen step (a journaled record, or one file-system call of the store: see crashVictim.ts), not at a
 * random instant; a fresh updater then recovers the folder and the invariants are checked.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { createModelUpdater } from '../../src/node/createModelUpdater.js';
import { readLogFile } from '../../src/node/fileEventLog.js';
import { verifyLogFolder } from '../../src/node/logSegments.js';
import { verifyContinuing } from '../../src/core/log/chain.js';
import { replay } from '../../src/core/log/replay.js';
import { publish } from '../../src/publish/publish.js';
import { startTestServer, type TestServer } from './testServer.js';

export const SCENARIOS = ['update', 'unhealthy', 'rotate'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** A place to kill: a scenario, a point the victim counts, and how often that point occurs in a whole run. */
export interface KillPoint {
  scenario: Scenario;
  point: string;
  occurrences: number;
}

export interface CrashWorld {
  root: string;
  manifestUrl: string;
  server: TestServer;
  /** A folder with 1.0.0 installed, copied for every run. */
  template: string;
  victim: string;
  /** Every kill point of every scenario, from one uninterrupted counting run each. */
  points: KillPoint[];
  close(): Promise<void>;
}

export interface CrashRun {
  run: number;
  scenario: Scenario;
  point: string;
  occurrence: number;
  /** False when the victim finished before reaching the point (the counts of a run can vary). */
  killed: boolean;
  /** The last record the victim journaled before it died. */
  lastRecord: string;
  activeBefore: string | null;
  problems: string[];
}

export { seededRandom } from '../../machines/seededRandom.js';

const copy = promisify(execFile);

function runVictim(world: Pick<CrashWorld, 'victim' | 'manifestUrl'>, dir: string, scenario: Scenario, kill: { point: string; occurrence: number } | null) {
  return new Promise<{ killed: boolean; stdout: string }>((resolve, reject) => {
    const env = { ...process.env, ...(kill ? { CRASH_POINT: kill.point, CRASH_OCCURRENCE: String(kill.occurrence) } : {}) };
    const child = spawn(process.execPath, [world.victim, world.manifestUrl, dir, scenario], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') return resolve({ killed: true, stdout });
      if (code !== 0) return reject(new Error(`the victim exited with ${code}: ${stderr}`));
      resolve({ killed: false, stdout });
    });
  });
}

/** Copies the template, keeping the hard links between versions/ and blobs/. */
async function copyTemplate(template: string, dir: string) {
  await copy('cp', ['-a', template, dir]);
}

export async function createCrashWorld(): Promise<CrashWorld> {
  const root = await mkdtemp(join(tmpdir(), 'model-updater-crash-'));
  const site = join(root, 'site');
  for (const [version, files] of [
    ['0.9.0', { 'model.bin': 128 * 1024 }],
    ['1.0.0', { 'model.bin': 256 * 1024 }],
    ['1.1.0', { 'model.bin': 384 * 1024, 'vocab/tokens.bin': 64 * 1024 }],
  ] as const) {
    const source = join(root, 'source', version);
    for (const [name, size] of Object.entries(files)) {
      await mkdir(join(source, name, '..'), { recursive: true });
      await writeFile(join(source, name), randomBytes(size));
    }
  }
  const server = await startTestServer({ root: site });
  const manifestUrl = `${server.url}manifest.json`;
  // The template has 1.0.0 active and 0.9.0 retained: the update to 1.1.0 then deletes 0.9.0 (gc).
  const template = join(root, 'template');
  const installer = createModelUpdater({ manifestUrl, dir: template, policy: { checkOnStart: false }, allowUnsigned: true });
  for (const version of ['0.9.0', '1.0.0']) {
    await publish({ out: site, version, inputs: [join(root, 'source', version)] });
    if (version === '0.9.0') await installer.start();
    const installed = await installer.check();
    if (installed.outcome !== 'activated') throw new Error(`could not install ${version}: ${JSON.stringify(installed)}`);
  }
  installer.stop();
  await publish({ out: site, version: '1.1.0', inputs: [join(root, 'source', '1.1.0')] });

  // One bundled file starts in a fraction of the time tsx needs.
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

  // One uninterrupted run of each scenario, counting: the set of points to kill at.
  const points: KillPoint[] = [];
  for (const scenario of SCENARIOS) {
    const dir = join(root, `count-${scenario}`);
    await copyTemplate(template, dir);
    const { stdout } = await runVictim({ victim, manifestUrl }, dir, scenario, null);
    const { counts } = JSON.parse(stdout.split('\n').filter(Boolean).at(-1)!) as { counts: Record<string, number> };
    for (const [point, occurrences] of Object.entries(counts)) points.push({ scenario, point, occurrences });
    await rm(dir, { recursive: true, force: true });
  }
  return {
    root,
    manifestUrl,
    server,
    template,
    victim,
    points,
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

/** One kill at the `occurrence`-th time the victim reaches `point`, then recovery and the invariants. */
export async function crashAt(world: CrashWorld, run: number, kill: { scenario: Scenario; point: string; occurrence: number }): Promise<CrashRun> {
  const runRoot = join(world.root, `run-${run}`);
  const dir = join(runRoot, 'models');
  await mkdir(runRoot, { recursive: true });
  await copyTemplate(world.template, dir);
  const { killed } = await runVictim(world, dir, kill.scenario, kill);
  const problems: string[] = [];

  const logged = readLogFile(join(dir, 'events.log'));
  const lastRecord = logged.records.at(-1)?.type ?? 'none';
  // Every segment: a kill inside a rotation must leave a chain that verifies across them.
  const left = verifyLogFolder(dir).verification;
  if (!left.ok) problems.push(`the log left by the victim does not verify: record ${left.seq} ${left.reason}`);
  const before = await checkActive(dir, ['1.0.0', '1.1.0']);
  problems.push(...before.problems.map((p) => `after the kill: ${p}`));

  const updater = createModelUpdater({ manifestUrl: world.manifestUrl, dir, policy: { checkOnStart: false }, allowUnsigned: true });
  try {
    await updater.start();
    const recovered = updater.getSnapshot();
    if (!verifyContinuing(updater.log.records()).ok || !verifyLogFolder(dir).verification.ok) problems.push('the log does not verify after recovery');
    if (JSON.stringify(replay(updater.log.records())?.context) !== JSON.stringify(recovered.context)) {
      problems.push('replay differs from the recovered state');
    }
    // The update finishes, or (after the victim's rollback, which sets 1.1.0 aside) stays on 1.0.0.
    const result = await updater.check();
    if (result.outcome === 'failed') problems.push(`the check after recovery failed: ${result.error?.code} ${result.error?.message}`);
    const after = await checkActive(dir, ['1.0.0', '1.1.0']);
    problems.push(...after.problems);
    if (after.version !== updater.active?.version) problems.push(`the pointer says ${after.version}, the updater ${updater.active?.version}`);
    await updater.gc();
    const staged = await readdir(join(dir, 'staging'), { recursive: true });
    if (staged.length) problems.push(`staging not clean after the check and gc: ${staged.join(', ')}`);
    const outside = (await readdir(runRoot)).filter((name) => name !== 'models');
    if (outside.length) problems.push(`files written outside dir: ${outside.join(', ')}`);
  } catch (error) {
    problems.push(`recovery failed: ${(error as Error).message}`);
  } finally {
    updater.stop();
  }
  await rm(runRoot, { recursive: true, force: true });
  return { run, ...kill, killed, lastRecord, activeBefore: before.version, problems };
}

/**
 * The kills for `perPoint` runs at every point: occurrences spread evenly over the point's range
 * (each one at least once when it has no more than `perPoint`), or one chosen by `random` when `perPoint` is 1.
 */
export function planKills(points: KillPoint[], perPoint: number, random: () => number) {
  return points.flatMap((p) =>
    Array.from({ length: perPoint }, (_, i) => ({
      scenario: p.scenario,
      point: p.point,
      occurrence: perPoint === 1 ? 1 + Math.floor(random() * p.occurrences) : p.occurrences <= perPoint ? 1 + (i % p.occurrences) : 1 + Math.round((i * (p.occurrences - 1)) / (perPoint - 1)),
    })),
  );
}

/** `update: rename in promote` */
export const pointName = (p: { scenario: string; point: string }) => `${p.scenario}: ${p.point}`;

/**
 * Runs the kills, `concurrency` at a time (each in its own folder), reporting each result as it comes.
 * @example
 * const runs = await runKills(world, planKills(world.points, 1, random), 2)
 */
export async function runKills(
  world: CrashWorld,
  kills: ReadonlyArray<{ scenario: Scenario; point: string; occurrence: number }>,
  concurrency: number,
  onResult: (run: CrashRun) => void = () => undefined,
): Promise<CrashRun[]> {
  const results: CrashRun[] = [];
  let next = 0;
  const worker = async () => {
    while (next < kills.length) {
      const run = next++;
      const result = await crashAt(world, run, kills[run]!);
      results[run] = result;
      onResult(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return results;
}
