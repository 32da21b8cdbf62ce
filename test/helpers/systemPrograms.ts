/**
 * Suites that need a program outside Node (Chromium, nginx, tinyproxy, python3) find out by launching
 * it. Missing, the suite skips with one line that names what to install, except under `CI=true`, where
 * it is required: the suite runs and fails with the same line.
 *
 * @example
 * const nginx = systemProgram('nginx', ['-v'], 'apt-get install -y nginx-light');
 * describe.skipIf(nginx.skip)('nginx', () => {
 *   beforeAll(() => nginx.require());
 * });
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUN_MARKER } from './leftoverProcesses.js';

export interface SystemProgram {
  /** The command as launched. */
  command: string;
  /** It started and exited 0. */
  available: boolean;
  /** Missing and not under CI: the suite skips (the reason was printed once). */
  skip: boolean;
  /** Throws, naming what to install, when the program is missing (under CI the suite fails here). */
  require(): void;
}

const CHROMIUM_PATH = '/usr/bin/chromium';
const printed = new Set<string>();

/**
 * Whether this is the first time in the whole run (every worker) that `name` is skipped: a file in the
 * run's own temp folder (test/helpers/noLeftoverProcesses.ts) is created once; outside such a run, once
 * a process.
 */
function firstSkip(name: string): boolean {
  if (printed.has(name)) return false;
  printed.add(name);
  if (process.env[RUN_MARKER] === undefined) return true;
  try {
    writeFileSync(path.join(os.tmpdir(), `skipped-${name.replace(/[^\w.-]/g, '_')}`), '', { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Launches `command args` once to see whether it runs; prints the skip line once per program and run.
 * `missing` replaces the default line for a capability rather than a program (root, for mounts).
 */
export function systemProgram(command: string, args: string[], install: string, missing?: string): SystemProgram {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  const available = result.error === undefined && result.status === 0;
  const required = process.env.CI === 'true';
  const reason = missing ?? `${command} is missing: install it (${install}) to run these tests; .ci/run does.`;
  // One plain line (console.log would add a header naming the file).
  if (!available && !required && firstSkip(path.basename(command) + (missing ? '-capability' : ''))) process.stdout.write(`skipped: ${reason}\n`);
  return {
    command,
    available,
    skip: !available && !required,
    require() {
      if (!available) throw new Error(reason);
    },
  };
}

/** Debian's Chromium, driven through playwright-core (no browser download). */
export const chromiumProgram = (): SystemProgram =>
  systemProgram(CHROMIUM_PATH, ['--headless', '--no-sandbox', '--version'], 'apt-get install -y chromium');
export const CHROMIUM = CHROMIUM_PATH;
export const nginxProgram = (): SystemProgram => systemProgram('nginx', ['-v'], 'apt-get install -y nginx-light');
export const tinyproxyProgram = (): SystemProgram => systemProgram('tinyproxy', ['-v'], 'apt-get install -y tinyproxy');
export const python3Program = (): SystemProgram => systemProgram('python3', ['--version'], 'apt-get install -y python3');
/**
 * Mounting a filesystem (a tmpfs for a real disk-full test, bind mounts to hide programs): needs root,
 * or CAP_SYS_ADMIN. Probed by mounting a tmpfs in a private mount namespace that ends with the probe.
 */
export const mountCapability = (): SystemProgram =>
  systemProgram('unshare', ['-m', 'mount', '-t', 'tmpfs', 'tmpfs', os.tmpdir()], 'util-linux', 'mounting a filesystem needs root: run the tests as root to run these tests; .ci/run does.');
