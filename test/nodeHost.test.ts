/**
 * The Node host example, walked as its README tells it, for real: the Silero voice-activity models from
 * `@ricky0123/vad-web` (a root devDependency, so `npm install` brings them and nothing is fetched here)
 * run with onnxruntime-web's wasm build, offline. Keys from `model-updater keygen`, every version
 * published with `model-updater publish --key --metadata` (signed), served from 127.0.0.1:
 * legacy (h, c) installs as 1.0.0; v5 (state) arrives as 2.0.0, `migrate` converts the saved stream and
 * `load` adapts to the new inputs; a damaged v6 (2.1.0) loads but fails the golden tone from its signed
 * metadata and is rolled back; the pristine v6 (2.1.1) installs.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { damageWeights } from '../examples/node-host/damageModel.js';
import { measureGolden } from '../examples/node-host/golden.js';
import { createVadService } from '../examples/node-host/service.js';
import { openVadModel, FRAME_SAMPLES, SAMPLE_RATE } from '../examples/node-host/vadModel.js';
import { readPublicKeyFile } from '../src/index.js';
import { runCli } from './helpers/runCli.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const VAD = 'node_modules/@ricky0123/vad-web/dist';
let root: string;
let site: string;
let server: TestServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-updater-node-host-'));
  site = join(root, 'site');
  server = await startTestServer({ root: site });
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The README's `measureGolden.ts <model> > <file>`: the metadata measured on a pristine model. */
async function measure(model: string): Promise<string> {
  const vad = await openVadModel(join(VAD, model));
  const file = join(root, `${model}.metadata.json`);
  await writeFile(file, JSON.stringify(await measureGolden(vad)));
  await vad.release();
  return file;
}

/** The README's `model-updater publish --out site --version v --key release.key --metadata m <model>`. */
async function publish(version: string, metadata: string, model: string): Promise<void> {
  const published = await runCli(['publish', '--out', site, '--version', version, '--key', join(root, 'release.key'), '--metadata', metadata, model]);
  expect(published.stderr).toBe('');
  expect(published.stdout).toContain(`published ${version}`);
  expect(published.stdout).toContain('signed by 1 key(s)');
  expect(published.code).toBe(0);
}

/** Speech-like enough to move the state: a 300 Hz tone with a slow swell, `frames` × 512 samples. */
const audio = (frames: number) =>
  Float32Array.from({ length: frames * FRAME_SAMPLES }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 3 * i) / SAMPLE_RATE) * Math.sin((2 * Math.PI * 300 * i) / SAMPLE_RATE));

const savedStream = async (version: string) => JSON.parse(await readFile(join(root, 'data', version, 'stream.json'), 'utf8'));

describe('node-host example (Silero VAD, signed)', () => {
  it('installs legacy, migrates to v5, refuses a damaged v6 by its signed golden answers, then installs the pristine v6', async () => {
    const keygen = await runCli(['keygen', '--out', join(root, 'release')]);
    expect(keygen.code).toBe(0);
    const [legacy, v5, v6] = await Promise.all([measure('silero_vad_legacy.onnx'), measure('silero_vad_v5.onnx'), measure('silero_vad_v6.onnx')]);
    await publish('1.0.0', legacy, join(VAD, 'silero_vad_legacy.onnx'));

    const service = createVadService({
      manifestUrl: `${server.url}manifest.json`,
      dir: join(root, 'models'),
      dataDir: join(root, 'data'),
      updater: { trustedKeys: [await readPublicKeyFile(join(root, 'release.pub'))], policy: { checkOnStart: false } },
    });
    const { updater } = service;
    try {
      await service.start();
      expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
      expect(await service.health()).toEqual({ ok: true, version: '1.0.0', inputs: ['input', 'sr', 'h', 'c'] });
      const heard = await service.speech(audio(8));
      expect(heard).toMatchObject({ version: '1.0.0', frames: 8 });
      expect(heard.probabilities).toHaveLength(8);
      const legacyStream = await savedStream('1.0.0');
      expect(legacyStream).toMatchObject({ layout: 'h,c', frames: 8 });

      // v5: a new input signature. migrate writes the stream in the new layout beside the old one.
      await publish('2.0.0', v5, join(VAD, 'silero_vad_v5.onnx'));
      expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '2.0.0' });
      expect(await service.health()).toEqual({ ok: true, version: '2.0.0', inputs: ['input', 'state', 'sr'] });
      const migrated = await savedStream('2.0.0');
      expect(migrated).toEqual({ layout: 'state', state: [...legacyStream.h, ...legacyStream.c], frames: 8 });
      expect(await savedStream('1.0.0')).toEqual(legacyStream); // the old version's data, untouched for a rollback
      expect(await service.speech(audio(2))).toMatchObject({ version: '2.0.0', frames: 10 });

      // A damaged v6, signed and published with the answers measured on the pristine one: it loads, it
      // answers the golden tone wrongly, it is rolled back and quarantined, and 2.0.0 keeps answering.
      const damaged = join(root, 'damaged', 'silero_vad_v6.onnx');
      await mkdir(join(root, 'damaged'));
      await writeFile(damaged, damageWeights(await readFile(join(VAD, 'silero_vad_v6.onnx'))));
      await publish('2.1.0', v6, damaged);
      const refused = await updater.check();
      expect(refused).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
      expect(refused.error?.message).toMatch(/health check of version 2\.1\.0 threw: on the golden 1000 Hz tone, frame 1 has speech probability 0\.[3-9]\d* where its publisher measured 0\.000/);
      expect(updater.active?.version).toBe('2.0.0');
      expect(updater.getSnapshot().context.quarantine.map((q) => q.version)).toEqual(['2.1.0']);
      expect(await service.health()).toMatchObject({ ok: true, version: '2.0.0' });
      expect(await service.speech(audio(1))).toMatchObject({ version: '2.0.0', frames: 11 });

      // The pristine v6: same signature, the stream carries over as it is.
      await publish('2.1.1', v6, join(VAD, 'silero_vad_v6.onnx'));
      expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '2.1.1' });
      expect(await service.health()).toEqual({ ok: true, version: '2.1.1', inputs: ['input', 'state', 'sr'] });
      expect(await savedStream('2.1.1')).toEqual(await savedStream('2.0.0'));
      expect(await service.speech(audio(1))).toMatchObject({ version: '2.1.1', frames: 12 });
    } finally {
      await service.stop();
    }
  }, 300_000); // five CLI runs (each a tsx child) and four model loads: minutes on a loaded 2-core machine

  it('says what it needs, without a stack trace, when started with neither TRUSTED_KEY nor ALLOW_UNSIGNED', async () => {
    const env = { ...process.env, TRUSTED_KEY: '', ALLOW_UNSIGNED: '', MODEL_DIR: join(root, 'unused'), DATA_DIR: join(root, 'unused') };
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/node-host/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^The service needs the update service's public key: set TRUSTED_KEY to the \.pub file from `model-updater keygen`\.\nusage: TRUSTED_KEY=/);
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});
