/**
 * vitest global setup: the run fails when a process it started outlives it. Before any worker starts,
 * every process of the run gets a marker in its environment (RUN_MARKER) and a temp folder of the run's
 * own (TMPDIR); after the last test, any process still carrying either is reported, killed, and the run
 * exits 1. See test/helpers/leftoverProcesses.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { canFindLeftoverProcesses, describeLeftovers, findLeftoverProcesses, killLeftoverProcesses, RUN_MARKER, type LeftoverProcess, type LeftoverSearch } from './leftoverProcesses.js';

/** A process that is still exiting after the last test gets this long to finish. */
const GRACE_MS = 2_000;

async function leftoversAfterGrace(search: LeftoverSearch): Promise<LeftoverProcess[]> {
  let leftovers = await findLeftoverProcesses(search);
  for (const deadline = Date.now() + GRACE_MS; leftovers.length > 0 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    leftovers = await findLeftoverProcesses(search);
  }
  return leftovers;
}

export async function setup(): Promise<() => Promise<void>> {
  const tempRoot = await mkdtemp(path.join(os.tmpdir(), 'model-updater-test-run-'));
  // tsx keeps its compile cache in TMPDIR/tsx-<uid>: share the usual one, or every CLI child of every
  // run compiles the sources from scratch (a symlink: files opened through it do not count as the run's).
  const tsxCache = `tsx-${process.geteuid?.() ?? os.userInfo().username}`;
  await mkdir(path.join(os.tmpdir(), tsxCache), { recursive: true, mode: 0o700 });
  await symlink(path.join(os.tmpdir(), tsxCache), path.join(tempRoot, tsxCache));
  // vitest's own workers are this process's children; whatever a test starts is theirs, or init's once orphaned.
  const search: LeftoverSearch = { marker: randomUUID(), tempRoot, excludeChildrenOf: [process.pid] };
  // Workers are forked after this: they, and every process they start, inherit both.
  process.env[RUN_MARKER] = search.marker;
  process.env.TMPDIR = tempRoot;
  const searchable = await canFindLeftoverProcesses();
  if (!searchable) process.stdout.write('not checked: processes left running after the tests (needs Linux /proc)\n');

  return async () => {
    if (searchable) {
      const leftovers = await leftoversAfterGrace(search);
      if (leftovers.length > 0) {
        await killLeftoverProcesses(leftovers);
        console.error(`\n${describeLeftovers(leftovers)}\n`);
        process.exitCode = 1;
      }
    }
    await rm(tempRoot, { recursive: true, force: true }).catch(() => {});
  };
}
