/**
 * Makes a golden install with the CLI of the checkout it runs in: keygen, publish 1.0.0, update,
 * publish 1.1.0, update, rollback. The model folder (events.log, pointer, trust.json, versions) is what
 * the golden-log tests open with the current code, and the update service folder it came from (`site/`);
 * every change of the log format adds one made by it. The empty folders (resume, staging) and the hard
 * links between blobs and versions do not survive git: the store recreates and re-checks them.
 * Usage: npx tsx test/golden/makeGoldenInstall.ts <out folder>
 */
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/runCli.js';
import { startTestServer } from '../helpers/testServer.js';

const out = path.resolve(process.argv[2] ?? '');
if (!process.argv[2]) throw new Error('usage: makeGoldenInstall.ts <out folder>');
const work = await mkdtemp(path.join(os.tmpdir(), 'golden-'));
const site = path.join(work, 'site');
const dir = path.join(out, 'install');
await mkdir(site, { recursive: true });
await mkdir(out, { recursive: true });
const server = await startTestServer({ root: site });
const run = async (args: string[]) => {
  const result = await runCli(args);
  if (result.code !== 0) throw new Error(`model-updater ${args.join(' ')} failed: ${result.stderr}`);
  return result;
};
try {
  await run(['keygen', '--out', path.join(out, 'release')]);
  const key = path.join(out, 'release.key');
  const trusted = ['--trusted-key', path.join(out, 'release.pub')];
  const manifest = ['--manifest', `${server.url}/manifest.json`, '--dir', dir];
  for (const [index, version] of ['1.0.0', '1.1.0'].entries()) {
    const file = path.join(work, `model-${version}.bin`);
    await writeFile(file, `weights of ${version}\n`);
    await run(['publish', '--out', site, '--version', version, '--key', key, '--expires', '2099-01-01T00:00:00.000Z', file]);
    await run(['update', ...manifest, ...trusted, '--json']);
    if (index === 1) await run(['rollback', '--dir', dir, '--json']);
  }
  const status = await run(['status', '--dir', dir, '--json']);
  await writeFile(path.join(out, 'expected-status.json'), `${status.stdout.trim()}\n`);
  // The update service as it was: the next update from a copy of it must pass the anti-rollback serial.
  await cp(site, path.join(out, 'site'), { recursive: true });
  console.log(`golden install in ${dir}`);
} finally {
  await server.close();
}
