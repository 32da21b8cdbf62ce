/**
 * Finds the processes a test run left running (Linux, through /proc). Every process the run starts
 * carries the run's marker in its environment: vitest's global setup (test/helpers/noLeftoverProcesses.ts)
 * sets it before any worker starts, and children inherit it. Programs that overwrite their environment
 * block to set a process title (nginx, Chromium) lose the marker, so a process also counts when its
 * working folder, one of its open files or its command line lies in the run's own temp folder (TMPDIR):
 * an nginx worker whose master was SIGKILLed still holds the access log there.
 *
 * @example
 * const leftovers = await findLeftoverProcesses({ marker, tempRoot, excludeChildrenOf: [process.pid] });
 * await killLeftoverProcesses(leftovers);
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

/** The environment variable that carries the run's marker to every process the run starts. */
export const RUN_MARKER = 'MODEL_UPDATER_TEST_RUN';

export interface LeftoverProcess {
  pid: number;
  /** Its command line as /proc shows it now (nginx: 'nginx: worker process'). */
  command: string;
  /** Why it belongs to the run: the marker, or the file in the run's temp folder it holds. */
  evidence: string;
}

export interface LeftoverSearch {
  /** The run's marker: the value of RUN_MARKER in the processes it started. */
  marker: string;
  /** The run's temp folder: a process working in it, holding a file in it or naming it belongs to the run. */
  tempRoot: string;
  /** Pids that are not leftovers; this process always is one. */
  exclude?: number[];
  /** Pids whose direct children are not leftovers: the vitest runner, whose children are its workers. */
  excludeChildrenOf?: number[];
}

/** Whether this system can be searched (Linux /proc). */
export async function canFindLeftoverProcesses(): Promise<boolean> {
  return readFile('/proc/self/environ').then(
    () => true,
    () => false,
  );
}

const quietly = <T>(read: Promise<T>, fallback: T): Promise<T> => read.catch(() => fallback);

/** Parses /proc/PID/stat: the state letter and the parent pid follow the parenthesised command name. */
function parseStat(stat: string): { state: string; ppid: number } | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields.length < 2) return undefined;
  return { state: fields[0]!, ppid: Number(fields[1]) };
}

async function evidenceOf(pid: number, { marker, tempRoot }: LeftoverSearch, cmdline: string): Promise<string | undefined> {
  const environ = await quietly(readFile(`/proc/${pid}/environ`, 'latin1'), '');
  if (environ.split('\0').includes(`${RUN_MARKER}=${marker}`)) return `${RUN_MARKER}=${marker} in its environment`;
  const inside = (file: string) => file === tempRoot || file.startsWith(tempRoot + path.sep);
  const cwd = await quietly(readlink(`/proc/${pid}/cwd`), '');
  if (inside(cwd)) return `works in ${cwd}`;
  for (const fd of await quietly(readdir(`/proc/${pid}/fd`), [] as string[])) {
    const target = await quietly(readlink(`/proc/${pid}/fd/${fd}`), '');
    if (inside(target.replace(/ \(deleted\)$/, ''))) return `holds ${target}`;
  }
  if (cmdline.includes(tempRoot)) return `its command line names ${tempRoot}`;
  return undefined;
}

/** The live processes (zombies aside) that belong to the run, except the excluded ones. */
export async function findLeftoverProcesses(search: LeftoverSearch): Promise<LeftoverProcess[]> {
  const exclude = new Set([process.pid, ...(search.exclude ?? [])]);
  const parents = new Set(search.excludeChildrenOf ?? []);
  const found: LeftoverProcess[] = [];
  for (const entry of await quietly(readdir('/proc'), [] as string[])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || exclude.has(pid)) continue;
    const stat = parseStat(await quietly(readFile(`/proc/${pid}/stat`, 'utf8'), ''));
    if (!stat || stat.state === 'Z' || parents.has(stat.ppid)) continue;
    const cmdline = (await quietly(readFile(`/proc/${pid}/cmdline`, 'utf8'), '')).replaceAll('\0', ' ').trim();
    const evidence = await evidenceOf(pid, search, cmdline);
    if (evidence) found.push({ pid, command: cmdline || `[pid ${pid}]`, evidence });
  }
  return found;
}

const alive = async (pid: number) => {
  const stat = parseStat(await quietly(readFile(`/proc/${pid}/stat`, 'utf8'), ''));
  return stat !== undefined && stat.state !== 'Z';
};

/** SIGKILLs them and resolves once every one is gone (or a zombie), within 5 s. */
export async function killLeftoverProcesses(leftovers: LeftoverProcess[]): Promise<void> {
  for (const { pid } of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const remaining = await Promise.all(leftovers.map(({ pid }) => alive(pid)));
    if (!remaining.includes(true)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The report: one line a process, and what a test must do instead. */
export function describeLeftovers(leftovers: LeftoverProcess[]): string {
  return [
    `The test run left ${leftovers.length} process${leftovers.length === 1 ? '' : 'es'} running (killed now). A test must stop every process it starts and wait for it to exit:`,
    ...leftovers.map(({ pid, command, evidence }) => `  pid ${pid}: ${command} (${evidence})`),
  ].join('\n');
}
