/**
 * Signed version metadata for the hooks: `publish({ metadata })` / `publish --metadata <file.json>` puts a
 * publisher-defined object in the signed manifest; `check` shows it; `migrate`, `load` and `healthCheck`
 * get it, so a health check compares the new model's answers with what its publisher measured. Real
 * files, a real loopback server, real signatures.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { publish } from '../src/publish/publish.js';
import type { ModelRef } from '../src/core/modelRef.js';
import { newKey, type TestKey } from './helpers/signedRepository.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';
import { runCli } from './helpers/runCli.js';

let root: string;
let out: string;
let server: TestServer;
let key: TestKey;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-updater-metadata-'));
  out = join(root, 'site');
  server = await startTestServer({ root: out });
  key = newKey();
});
afterEach(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

/** A "model": its answer to an input is input × (its first byte). */
const answer = (weights: Buffer, input: number) => input * weights[0]!;

async function modelFile(name: string, weight: number): Promise<string> {
  const file = join(root, `${name}.bin`);
  await writeFile(file, Buffer.from([weight, 1, 2, 3]));
  return file;
}

const golden = (expected: number[]) => ({ format: 'toy-v1', golden: [1, 2, 3].map((input, i) => ({ input, expected: expected[i], tolerance: 1e-9 })) });

/** Hooks that record what they were handed; the health check compares with the publisher's golden outputs. */
function hooks() {
  const seen: Record<string, unknown[]> = { migrate: [], load: [], healthCheck: [] };
  return {
    seen,
    loader: {
      migrate: (context: { to: ModelRef; metadata?: Record<string, unknown> }) => void seen.migrate!.push(context.metadata),
      load: async (model: ModelRef) => {
        seen.load!.push(model.metadata);
        return readFile(join(model.path, 'model.bin'));
      },
      healthCheck: (model: ModelRef, weights: Buffer) => {
        seen.healthCheck!.push(model.metadata);
        const cases = (model.metadata?.golden ?? []) as Array<{ input: number; expected: number; tolerance: number }>;
        return cases.length > 0 && cases.every((c) => Math.abs(answer(weights, c.input) - c.expected) <= c.tolerance);
      },
    },
  };
}

const updaterWith = (loader: ReturnType<typeof hooks>['loader']) =>
  createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir: join(root, 'models'), trustedKeys: [key.publicKey], policy: { checkOnStart: false }, loader });

describe('signed version metadata', () => {
  it('migrate, load and healthCheck get the metadata; a model that answers as its publisher measured activates', async () => {
    await publish({ out, version: '1.0.0', inputs: [await modelFile('model', 7)], keys: [key.privateKey], metadata: golden([7, 14, 21]) });
    const { seen, loader } = hooks();
    const updater = updaterWith(loader);
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(seen).toEqual({ migrate: [golden([7, 14, 21])], load: [golden([7, 14, 21])], healthCheck: [golden([7, 14, 21])] });
    expect(updater.active?.metadata).toEqual(golden([7, 14, 21]));
    updater.stop();
  });

  it('a model whose answers differ from its metadata fails its health check and rolls back', async () => {
    await publish({ out, version: '1.0.0', inputs: [await modelFile('model', 7)], keys: [key.privateKey], metadata: golden([7, 14, 21]) });
    const { loader } = hooks();
    const updater = updaterWith(loader);
    await updater.start();
    await updater.check();
    // 1.1.0's weights answer ×9, but its publisher measured ×8.
    await publish({ out, version: '1.1.0', inputs: [await modelFile('model', 9)], keys: [key.privateKey], metadata: golden([8, 16, 24]) });
    expect(await updater.check()).toMatchObject({ outcome: 'rolled-back', error: { code: 'HEALTH_CHECK_FAILED' } });
    expect(updater.active?.version).toBe('1.0.0');
    updater.stop();
    // After a restart the active version still has its metadata (kept in active.json).
    const again = updaterWith(hooks().loader);
    await again.start();
    expect(again.active?.metadata).toEqual(golden([7, 14, 21]));
    again.stop();
  });

  it('editing the metadata in the served manifest breaks the signature', async () => {
    await publish({ out, version: '1.0.0', inputs: [await modelFile('model', 7)], keys: [key.privateKey], metadata: golden([7, 14, 21]) });
    const path = join(out, 'manifest.json');
    const envelope = JSON.parse(await readFile(path, 'utf8'));
    envelope.signed.versions[0].metadata.golden[0].expected = 8;
    await writeFile(path, JSON.stringify(envelope));
    const { seen, loader } = hooks();
    const updater = updaterWith(loader);
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'failed', error: { code: 'SIGNATURE_INVALID' } });
    expect(updater.active).toBeNull();
    expect(seen.load).toEqual([]);
    updater.stop();
  });

  it('metadata that is not an object, or too large, is refused when published', async () => {
    const file = await modelFile('model', 7);
    await expect(publish({ out, version: '1.0.0', inputs: [file], metadata: [1, 2] as never })).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
    await expect(publish({ out, version: '1.0.0', inputs: [file], metadata: { blob: 'x'.repeat(70_000) } })).rejects.toThrow(/at most 65536/);
  });

  it('CLI: publish --metadata <file.json> signs it in; check shows it', async () => {
    const keys = join(root, 'keys');
    await mkdir(keys);
    expect((await runCli(['keygen', '--out', join(keys, 'a')])).code).toBe(0);
    const metadataFile = join(root, 'metadata.json');
    await writeFile(metadataFile, JSON.stringify(golden([7, 14, 21])));
    const published = await runCli(['publish', '--out', out, '--version', '1.0.0', '--key', join(keys, 'a.key'), '--metadata', metadataFile, '--json', await modelFile('model', 7)]);
    expect(published.json).toMatchObject({ ok: true, version: { metadata: golden([7, 14, 21]) } });
    const check = await runCli(['check', '--manifest', `${server.url}manifest.json`, '--dir', join(root, 'models'), '--trusted-key', join(keys, 'a.pub'), '--json']);
    expect(check.json).toMatchObject({ ok: true, candidate: { version: '1.0.0', metadata: golden([7, 14, 21]) } });
    await writeFile(metadataFile, '{"a":1,"a":2}');
    const refused = await runCli(['publish', '--out', out, '--version', '1.1.0', '--metadata', metadataFile, '--json', await modelFile('model', 7)]);
    expect(refused.json).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
  });
});
