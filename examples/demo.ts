/**
 * `npm run demo`: the whole lifecycle on this machine, with nothing to set up.
 *
 * 1. Generates three versions of a small "model" and publishes them into a static folder.
 * 2. Serves that folder from 127.0.0.1 with a plain node:http file server (no Range, no ETag: the
 *    updater works with the simplest static server).
 * 3. Updates 1.0.0 → 1.1.0 with a progress bar, then is offered 1.2.0, whose weights are wrong: its
 *    health check fails and the updater rolls back to 1.1.0.
 * 4. Prints the audit log.
 *
 * In your app, import from 'model-updater' instead of '../src/index.js'.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { createModelUpdater, formatRecord, type DownloadProgress, type ModelRef } from '../src/index.js';
import { generateKeyPair, parsePrivateKeyText, publish } from '../src/publish/index.js';

const MB = 1024 * 1024;

/** A toy model: random weights plus the digest a correct build must produce on the golden input. */
async function buildModel(folder: string, sizeMB: number, broken: boolean): Promise<void> {
  await mkdir(folder, { recursive: true });
  const weights = randomBytes(sizeMB * MB);
  const golden = createHash('sha256').update(weights.subarray(0, 4096)).digest('hex');
  await writeFile(join(folder, 'weights.bin'), weights);
  await writeFile(join(folder, 'config.json'), JSON.stringify({ golden: broken ? golden.replace(/./, 'f') : golden }));
}

/** The host's health check: run the golden input through the loaded weights and compare. */
async function healthCheck(model: ModelRef): Promise<boolean> {
  const weights = await readFile(join(model.path, 'weights.bin'));
  const { golden } = JSON.parse(await readFile(join(model.path, 'config.json'), 'utf8'));
  return createHash('sha256').update(weights.subarray(0, 4096)).digest('hex') === golden;
}

function serveFolder(root: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    const info = path.startsWith(root) ? await stat(path).catch(() => null) : null;
    if (!info?.isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': info.size });
    createReadStream(path).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function drawProgress(p: DownloadProgress): void {
  const width = 32;
  const filled = Math.round((p.bytes / p.total) * width);
  const line = `  ${p.version} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${((p.bytes / p.total) * 100).toFixed(0).padStart(3)}%  ${(p.bytesPerSecond / MB).toFixed(0)} MB/s`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}${p.bytes === p.total ? '\n' : ''}`);
  else if (p.bytes === p.total) console.log(line);
}

const work = await mkdtemp(join(tmpdir(), 'model-updater-demo-'));
const site = join(work, 'update-service');
const dir = join(work, 'app-models');
const server = await serveFolder(site);
try {
  // The publisher's signing key (in real life: `model-updater keygen --out release`, kept offline).
  const signingKey = generateKeyPair();
  const release = async (version: string, sizeMB: number, broken = false) => {
    await buildModel(join(work, 'build', version), sizeMB, broken);
    const keys = [parsePrivateKeyText(signingKey.privateKeyPem, 'the demo key')];
    await publish({ out: site, version, inputs: [join(work, 'build', version)], notes: `demo build ${version}`, keys });
  };
  console.log(`Update service: ${site}, served on 127.0.0.1`);
  await release('1.0.0', 8);
  const { port } = server.address() as { port: number };
  const manifestUrl = `http://127.0.0.1:${port}/manifest.json`;

  const updater = createModelUpdater({
    manifestUrl,
    dir,
    trustedKeys: [signingKey.publicKey],
    appVersion: '2.3.0',
    policy: { approval: 'auto', checkOnStart: false },
    progressIntervalMs: 100,
    loader: { load: (model) => model.version, healthCheck: (model) => healthCheck(model) },
  });
  updater.on('progress', drawProgress);
  updater.on('activated', (e) => console.log(`  activated ${e.version} (was ${e.previous ?? 'none'}), files in ${e.model.path}`));
  updater.on('rolled-back', (e) => console.log(`  rolled back to ${e.version}: ${e.cause?.code} (${e.cause?.message})`));
  await updater.start();

  console.log('\nFirst start: installing 1.0.0');
  await updater.check();

  console.log('\n1.1.0 is published: updating 1.0.0 → 1.1.0');
  await release('1.1.0', 48);
  await updater.check();

  console.log('\n1.2.0 is published with wrong weights: its health check will fail');
  await release('1.2.0', 8, true);
  const result = await updater.check();
  console.log(`  outcome: ${result.outcome}; active version: ${updater.active?.version}; the host never lost a working model`);

  console.log('\nAudit log (events.log, hash-chained):');
  for (const record of updater.log.records()) console.log(formatRecord(record));
  updater.stop();
} finally {
  server.close();
  await rm(work, { recursive: true, force: true });
}
