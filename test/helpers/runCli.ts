/**
 * Runs `model-updater <args>` from the current source (tsx) in a child process and collects what it
 * printed: the tests drive the CLI exactly as a user's shell would.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is exactly one JSON object. */
  json?: any;
}

export interface RunCliOptions {
  /** The child's whole environment (default: this process's, without DEBUG). */
  env?: Record<string, string | undefined>;
  /** Hang up on its output at once, as `| head -1` does after its line: every write gets EPIPE. */
  closeStdout?: boolean;
}

/**
 * @example
 * const { code, json } = await runCli(['status', '--dir', dir, '--json'])
 */
export function runCli(args: string[], { env = { ...process.env, DEBUG: '' }, closeStdout = false }: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: PROJECT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (closeStdout) child.stdout.destroy();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const result: CliResult = { code: code ?? (signal ? 128 : -1), stdout, stderr };
      const text = stdout.trim();
      if (text.startsWith('{') && !text.includes('\n')) {
        try {
          const value: unknown = JSON.parse(text);
          if (typeof value === 'object' && value !== null && !Array.isArray(value)) result.json = value;
        } catch {
          // not one JSON object: json stays undefined
        }
      }
      resolve(result);
    });
  });
}
