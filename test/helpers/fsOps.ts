/**
 * Watches the file-system calls of this process at the edge, node:fs/promises itself (and the sync
 * calls the lock and log use, and fsyncs by file descriptor, named by the path the descriptor was opened on), without any seam in the code under test: each call is reported before it
 * runs, with its kind and path. Used to prove ordering (every folder synced before the switch) and by
 * the kill test to stop a process at a chosen call.
 *
 * Works because Node lets a program replace a built-in module's functions and push the change to every
 * ES module importing them (`syncBuiltinESMExports`); FileHandle methods are patched on its prototype.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

export type FsOpKind = 'mkdir' | 'rename' | 'link' | 'unlink' | 'rm' | 'open' | 'fsync' | 'chmod' | 'write';

export interface FsOp {
  kind: FsOpKind;
  /** The path operated on (for rename and link, the source; `to` is the destination). */
  path: string;
  to?: string;
  /** The node:fs function called, for the fsyncs made by file descriptor (`fdatasyncSync` blocks the event loop, `fdatasync` does not). */
  call?: string;
}

const PROMISE_CALLS: Array<[keyof typeof fsp, FsOpKind]> = [
  ['mkdir', 'mkdir'],
  ['rename', 'rename'],
  ['link', 'link'],
  ['unlink', 'unlink'],
  ['rm', 'rm'],
  ['open', 'open'],
  ['chmod', 'chmod'],
  ['writeFile', 'write'],
];
const SYNC_CALLS: Array<[keyof typeof fs, FsOpKind]> = [
  ['mkdirSync', 'mkdir'],
  ['renameSync', 'rename'],
  ['rmSync', 'rm'],
  ['unlinkSync', 'unlink'],
  ['openSync', 'open'],
];

/** Calls on a file descriptor (the event log syncs its file by descriptor, off the event loop or not). */
const FD_SYNC_CALLS = ['fsyncSync', 'fdatasyncSync', 'fsync', 'fdatasync'] as const;

let listener: ((op: FsOp) => void) | null = null;
const fdPaths = new Map<number, string>();
let installed: Promise<void> | null = null;
const handlePaths = new WeakMap<object, string>();

const text = (value: unknown) => (value instanceof URL ? value.pathname : String(value));

async function install(): Promise<void> {
  const anyFsp = fsp as unknown as Record<string, (...args: unknown[]) => unknown>;
  const anyFs = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, kind] of PROMISE_CALLS) {
    const real = anyFsp[name]!;
    anyFsp[name] = async function (this: unknown, ...args: unknown[]) {
      listener?.({ kind, path: text(args[0]), ...(kind === 'rename' || kind === 'link' ? { to: text(args[1]) } : {}) });
      const result = await real.apply(this, args);
      if (kind === 'open' && result && typeof result === 'object') handlePaths.set(result, text(args[0]));
      return result;
    };
  }
  for (const [name, kind] of SYNC_CALLS) {
    const real = anyFs[name]!;
    anyFs[name] = function (this: unknown, ...args: unknown[]) {
      listener?.({ kind, path: text(args[0]), ...(kind === 'rename' ? { to: text(args[1]) } : {}) });
      const result = real.apply(this, args);
      if (kind === 'open' && typeof result === 'number') fdPaths.set(result, text(args[0]));
      return result;
    };
  }
  for (const name of FD_SYNC_CALLS) {
    const real = anyFs[name]!;
    anyFs[name] = function (this: unknown, ...args: unknown[]) {
      listener?.({ kind: 'fsync', path: fdPaths.get(args[0] as number) ?? '?', call: name });
      return real.apply(this, args);
    };
  }
  syncBuiltinESMExports();
  // FileHandle is not exported: take its prototype from a handle.
  const probe = await fsp.open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => unknown>;
  await probe.close();
  for (const name of ['sync', 'datasync'] as const) {
    const real = proto[name]!;
    proto[name] = function (this: object, ...args: unknown[]) {
      listener?.({ kind: 'fsync', path: handlePaths.get(this) ?? '?' });
      return real.apply(this, args);
    };
  }
}

/**
 * Reports every watched call to `onOp` (before it runs) until the returned function is called.
 * @example
 * const ops: FsOp[] = []; const stop = await watchFs((op) => ops.push(op)); ...; stop()
 */
export async function watchFs(onOp: (op: FsOp) => void): Promise<() => void> {
  installed ??= install();
  await installed;
  listener = onOp;
  return () => {
    if (listener === onOp) listener = null;
  };
}
