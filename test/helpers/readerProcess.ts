/**
 * Starts test/helpers/readerChild.ts in a child process: a real second process reading the model folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ReaderProcess {
  child: ChildProcess;
  /** What the reader printed first: the model it holds, or `{ error }`. */
  first: any;
  /** Asks the reader to release its pin and waits for it to exit. */
  release(): Promise<void>;
  /** SIGKILL, as a crash would; resolves when it is gone. */
  kill(): Promise<void>;
}

export function startReader(dir: string): Promise<ReaderProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/readerChild.ts', dir], { cwd: PROJECT, stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    let buffer = '';
    let first: any;
    child.once('error', reject);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      if (first !== undefined || !buffer.includes('\n')) return;
      first = JSON.parse(buffer.slice(0, buffer.indexOf('\n')));
      resolve({
        child,
        first,
        async release() {
          child.stdin!.write('release\n');
          await exited;
        },
        async kill() {
          child.kill('SIGKILL');
          await exited;
        },
      });
    });
    child.once('exit', (code) => {
      if (first === undefined) reject(new Error(`the reader exited (${code}) before printing: ${buffer}`));
    });
  });
}
