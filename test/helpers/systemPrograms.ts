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

/** Launches `command args` once to see whether it runs; prints the skip line once per program. */
export function systemProgram(command: string, args: string[], install: string): SystemProgram {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  const available = result.error === undefined && result.status === 0;
  const required = process.env.CI === 'true';
  const reason = `${command} is missing: install it (${install}) to run these tests; .ci/run does.`;
  if (!available && !required && !printed.has(command)) {
    printed.add(command);
    console.log(`skipped: ${reason}`);
  }
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
