/**
 * Compatibility beyond the app version: a version's `requires` (runtime ranges, memory, accelerator kinds,
 * requirements this client does not know) against the host's `capabilities`, over a signed repository on
 * loopback HTTP and real files. Selection skips what the host cannot run; check says why, per version.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedRepository, type SignedRepository } from './helpers/signedRepository.js';
import { runCli } from './helpers/runCli.js';

const GiB = 2 ** 30;
let repo: SignedRepository;
beforeEach(async () => {
  repo = await createSignedRepository();
  // 1.0.0 runs anywhere; each newer one asks for more.
  await repo.addVersion('1.0.0');
  (await repo.addVersion('1.1.0')).requires = { runtime: { onnxruntime: '>=1.17' } };
  (await repo.addVersion('1.2.0')).requires = { runtime: { onnxruntime: '>=1.17' }, minMemoryBytes: 16 * GiB, accelerators: ['cuda', 'webgpu'] };
  (await repo.addVersion('1.3.0')).requires = { runtime: { onnxruntime: '>=1.17' }, npu: { tops: 40 } };
  await repo.publish();
});
afterEach(async () => {
  await repo.close();
});

describe('requires against capabilities', () => {
  it('installs the newest version the host can run and says why each newer one was skipped', async () => {
    const updater = repo.updater({ capabilities: { runtime: { onnxruntime: '1.18.0' }, memoryBytes: 8 * GiB, accelerators: ['webgpu'] } });
    const announced: unknown[] = [];
    updater.on('update-available', (event) => announced.push(event));
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(result.skipped).toEqual([
      { version: '1.3.0', reason: expect.stringContaining('"npu", a requirement this client does not know') },
      { version: '1.2.0', reason: `needs ${16 * GiB} bytes of memory; this host has ${8 * GiB}` },
    ]);
    expect(announced).toEqual([{ version: '1.1.0', notes: undefined, size: 4096, fetchBytes: 4096, skipped: result.skipped }]);
    expect(updater.active?.version).toBe('1.1.0');
  });

  it('an older runtime keeps the version that needs nothing; the others are skipped with the runtime named', async () => {
    const updater = repo.updater({ capabilities: { runtime: { onnxruntime: '1.16.3' } } });
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(result.skipped?.map((entry) => entry.version)).toEqual(['1.3.0', '1.2.0', '1.1.0']);
    expect(result.skipped?.find((entry) => entry.version === '1.1.0')?.reason).toBe('needs runtime onnxruntime >=1.17; this host has 1.16.3');
  });

  it('a host without the runtime at all, or with no accelerator of the kinds asked for, is told so', async () => {
    const updater = repo.updater({ capabilities: { runtime: { tflite: '2.14.0' }, memoryBytes: 32 * GiB, accelerators: ['nnapi'] } });
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    expect(result.skipped?.find((entry) => entry.version === '1.1.0')?.reason).toBe('needs runtime onnxruntime >=1.17; this host has no onnxruntime');
    updater.stop();
    const gpu = repo.updater({ capabilities: { runtime: { onnxruntime: '1.18.0' }, memoryBytes: 32 * GiB, accelerators: ['nnapi'] } });
    await gpu.start();
    const again = await gpu.check();
    expect(again).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    expect(again.skipped?.find((entry) => entry.version === '1.2.0')?.reason).toBe('needs an accelerator of kind cuda or webgpu; this host has nnapi');
  });

  it('an unknown requirement is not a broken manifest: the versions this client can judge still install', async () => {
    const updater = repo.updater({ capabilities: { runtime: { onnxruntime: '1.20.0' }, memoryBytes: 64 * GiB, accelerators: ['cuda'] } });
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'activated', version: '1.2.0', error: null });
    expect(result.skipped).toEqual([{ version: '1.3.0', reason: expect.stringContaining('"npu"') }]);
  });

  it('capabilities are the ones the host gives now: restarted without them, the requirements are not checked', async () => {
    const old = repo.updater({ capabilities: { runtime: { onnxruntime: '1.16.3' } } });
    await old.start();
    expect(await old.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    old.stop();
    const unstated = repo.updater();
    await unstated.start();
    expect(unstated.getSnapshot().context.config.capabilities ?? null).toBeNull();
    const result = await unstated.check();
    expect(result).toMatchObject({ outcome: 'activated', version: '1.2.0' });
    expect(result.skipped).toEqual([{ version: '1.3.0', reason: expect.stringContaining('"npu"') }]);
  });

  it('capabilities that make no sense are INVALID_ARGUMENT when the updater is made', () => {
    expect(() => repo.updater({ capabilities: { runtime: { onnxruntime: 'latest' } } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => repo.updater({ capabilities: { memoryBytes: -1 } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => repo.updater({ capabilities: { accelerators: ['Web GPU'] } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a requires field of the wrong shape is MANIFEST_INVALID naming it', async () => {
    repo.signed.versions[1]!.requires = { runtime: { onnxruntime: 'not a range' } };
    await repo.publish();
    const updater = repo.updater();
    await updater.start();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'MANIFEST_INVALID' } });
    expect(result.error!.message).toContain('versions.1.requires.runtime.onnxruntime');
  });

  it('CLI: check --runtime --memory --accelerator lists the skipped versions with reasons, per version', async () => {
    const key = join(repo.root, 'root.pub');
    await writeFile(key, `${repo.rootKey.publicKey}\n`);
    const flags = ['--manifest', repo.manifestUrl, '--dir', repo.dir, '--trusted-key', key, '--runtime', 'onnxruntime=1.18.0', '--memory', '8g', '--accelerator', 'webgpu'];
    const check = await runCli(['check', ...flags, '--json']);
    expect(check.code).toBe(0);
    expect(check.json).toMatchObject({ ok: true, outcome: 'available', updateAvailable: true, candidate: { version: '1.1.0' } });
    expect(check.json.skipped).toEqual([
      { version: '1.3.0', reason: expect.stringContaining('"npu"') },
      { version: '1.2.0', reason: `needs ${16 * GiB} bytes of memory; this host has ${8 * GiB}` },
    ]);
    const text = await runCli(['check', ...flags]);
    expect(text.stdout).toContain(`skipped 1.2.0: needs ${16 * GiB} bytes of memory`);
  });
});
