/**
 * Signed manifests and the update attacks of TUF's threat list, one test per row, against a signing
 * repository served over loopback HTTP (test/helpers/signedRepository.ts). Every rejection must leave
 * the trusted state on disk byte-identical, the old version active, and no model byte fetched.
 */
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ModelUpdater } from '../src/index.js';
import { replay } from '../src/core/log/replay.js';
import { quarantineLog } from '../src/node/quarantineLog.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { createSignedRepository, newKey, T0, type SignedRepository } from './helpers/signedRepository.js';
import { startTestServer } from './helpers/testServer.js';

let repo: SignedRepository;
beforeEach(async () => {
  repo = await createSignedRepository();
});
afterEach(async () => {
  await repo.close();
});

const modelRequests = () => repo.server.requests.filter((r) => !r.path.endsWith('manifest.json'));

/** An updater with 1.0.0 installed from a signed manifest (serial 1). */
async function installed(options: Parameters<SignedRepository['updater']>[0] = {}): Promise<ModelUpdater<any>> {
  await repo.addVersion('1.0.0');
  await repo.publish();
  const updater = repo.updater(options);
  await updater.start();
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  return updater;
}

/** Runs a check that must be refused with `code`, and checks that nothing it trusts moved. */
async function expectRejected(updater: ModelUpdater<any>, code: string) {
  const disk = await repo.trustedStateOnDisk();
  const trust = updater.getSnapshot().context.trust;
  const active = updater.active?.version ?? null;
  const fetched = modelRequests().length;
  const result = await updater.check();
  expect(result).toMatchObject({ outcome: 'failed', error: { code } });
  expect(result.error!.message.length).toBeGreaterThan(20);
  expect(await repo.trustedStateOnDisk()).toEqual(disk);
  expect(updater.getSnapshot().context.trust).toEqual(trust);
  expect(updater.active?.version ?? null).toBe(active);
  expect(modelRequests().length).toBe(fetched);
  // What the log says is what the updater believes.
  expect(replay(updater.log.records())!.context.trust).toEqual(trust);
  return result.error!;
}

describe('signatures', () => {
  it('installs from a manifest signed by the trusted key, and records its serial', async () => {
    const updater = await installed();
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [repo.rootKey.publicKey], threshold: 1, serial: 1 });
  });

  it('SIGNATURE_INVALID: signed by a key that is not trusted', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    repo.signers = [newKey()];
    await repo.publish();
    await expectRejected(updater, 'SIGNATURE_INVALID');
  });

  it('SIGNATURE_INVALID: the signed content was changed after signing', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    const text = await repo.publish();
    const evil = JSON.parse(text);
    evil.signed.versions[1].files[0].sha256 = 'f'.repeat(64);
    await repo.serveRaw(JSON.stringify(evil));
    await expectRejected(updater, 'SIGNATURE_INVALID');
  });

  it('SIGNATURE_INVALID: fewer valid signatures than the threshold; enough of them is accepted', async () => {
    const second = newKey();
    const updater = repo.updater({ trustedKeys: [repo.rootKey.publicKey, second.publicKey], threshold: 2 });
    await updater.start();
    await repo.addVersion('1.0.0');
    repo.signers = [repo.rootKey, repo.rootKey];
    await repo.publish();
    await expectRejected(updater, 'SIGNATURE_INVALID');
    repo.signers = [repo.rootKey, second];
    await repo.publish();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  });

  it('SIGNATURE_INVALID: an unsigned manifest when keys are configured', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    await repo.serveRaw(JSON.stringify({ ...repo.signed, serial: 99 }));
    await expectRejected(updater, 'SIGNATURE_INVALID');
  });

  it('no keys: refused unless allowUnsigned is explicit, which the log shows as a warning', async () => {
    await repo.addVersion('1.0.0');
    await repo.serveRaw(JSON.stringify(repo.signed));
    expect(() => repo.updater({ trustedKeys: [] })).toThrow(/allowUnsigned/);
    expect(() => repo.updater({ allowUnsigned: true })).toThrow(/cannot be combined/);
    const updater = repo.updater({ trustedKeys: [], allowUnsigned: true });
    await updater.start();
    expect(await updater.check()).toMatchObject({ outcome: 'activated' });
    const { summarize } = await import('../src/core/log/describe.js');
    const fetched = updater.log.records().find((r) => r.type === 'manifest.accepted')!;
    expect(summarize(fetched)).toContain('WARNING: unsigned');
  });
});

describe('key rotation', () => {
  it('a rotation signed by the current and the new keys is accepted, persisted, and survives a restart', async () => {
    const updater = await installed();
    const next = newKey();
    repo.signed.trust = { keys: [next.publicKey], threshold: 1 };
    repo.signers = [repo.rootKey, next];
    await repo.publish();
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [next.publicKey], serial: 2 });
    const saved = JSON.parse((await repo.trustedStateOnDisk()).trust!);
    expect(saved).toMatchObject({ keys: [next.publicKey], threshold: 1, serial: 2 });

    // From now on only the new key counts: the old one alone is refused.
    await repo.addVersion('1.1.0');
    repo.signers = [repo.rootKey];
    await repo.publish();
    await expectRejected(updater, 'SIGNATURE_INVALID');
    updater.stop();

    // A restart with the same configured key keeps the rotated set (from the log and trust.json).
    repo.signers = [next];
    await repo.publish();
    const restarted = repo.updater();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust.keys).toEqual([next.publicKey]);
    expect(await restarted.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  });

  it('a rotation not signed by the current keys is SIGNATURE_INVALID and trust.json keeps the current keys', async () => {
    const updater = await installed();
    const attacker = newKey();
    repo.signed.trust = { keys: [attacker.publicKey], threshold: 1 };
    repo.signers = [attacker];
    await repo.publish();
    await expectRejected(updater, 'SIGNATURE_INVALID');
    expect(JSON.parse((await repo.trustedStateOnDisk()).trust!)).toMatchObject({ keys: [repo.rootKey.publicKey], threshold: 1, serial: 1 });
  });

  it('a rotation signed by the current keys but not by the new ones is refused', async () => {
    const updater = await installed();
    repo.signed.trust = { keys: [newKey().publicKey], threshold: 1 };
    await repo.publish();
    const error = await expectRejected(updater, 'SIGNATURE_INVALID');
    expect(error.message).toContain('new keys');
  });
});

describe('configured keys', () => {
  it('a host that configures other keys starts over from them, keeping the highest serial (journaled TRUST)', async () => {
    const updater = await installed();
    updater.stop();
    const replacement = newKey();
    const restarted = repo.updater({ trustedKeys: [replacement.publicKey] });
    await restarted.start();
    expect(restarted.getSnapshot().context.trust).toMatchObject({ keys: [replacement.publicKey], serial: 1 });
    expect(restarted.log.records().some((r) => r.type === 'trust.reset')).toBe(true);
    // The old key no longer counts, and the serial still does.
    await repo.addVersion('1.1.0');
    await repo.publish();
    await expectRejected(restarted, 'SIGNATURE_INVALID');
    repo.signers = [replacement];
    repo.signed.serial = 0;
    await repo.publish({ bump: false });
    await expectRejected(restarted, 'ROLLBACK_REJECTED');
  });

  it('an updater that checks nothing (no manifestUrl, no keys: the CLI\'s rollback, status, gc) leaves the trust state alone', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    await repo.publish();
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    updater.stop();
    const trust = { keys: [repo.rootKey.publicKey], threshold: 1, serial: 2 };
    const { trust: keptBefore } = await repo.trustedStateOnDisk();

    const offline = createModelUpdater({ dir: repo.dir, policy: { checkOnStart: false, schedule: false } });
    await offline.start();
    expect(await offline.rollback()).toMatchObject({ outcome: 'rolled-back', version: '1.0.0' });
    expect(offline.log.records().filter((record) => record.type === 'trust.reset')).toEqual([]);
    expect(offline.getSnapshot().context.trust).toMatchObject(trust);
    offline.stop();
    expect((await repo.trustedStateOnDisk()).trust).toBe(keptBefore);

    // The checking updater finds the trust state it left: nothing to re-configure, no TRUST record.
    const restarted = repo.updater();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust).toMatchObject(trust);
    expect(restarted.log.records().filter((record) => record.type === 'trust.reset')).toEqual([]);
  });
});

describe('rollback attack', () => {
  it('ROLLBACK_REJECTED: a validly signed manifest with a lower serial than accepted', async () => {
    const updater = await installed();
    const old = await readFile(join(repo.site, 'manifest.json'));
    await repo.addVersion('1.1.0');
    await repo.publish();
    repo.signed.versions.pop();
    await repo.publish();
    expect(updater.getSnapshot().context.trust.serial).toBe(1);
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust.serial).toBe(3);
    await repo.serveRaw(old);
    await expectRejected(updater, 'ROLLBACK_REJECTED');
  });

  /** Serial 2 offers 1.1.0, serial 3 pulls it again; the updater only ever checks at serial 3. Returns serial 2's bytes. */
  async function pulledAfterwards(updater: ModelUpdater<any>): Promise<Buffer> {
    await repo.addVersion('1.1.0');
    await repo.publish();
    const offering = await readFile(join(repo.site, 'manifest.json'));
    repo.signed.versions.pop();
    await repo.publish();
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust.serial).toBe(3);
    updater.stop();
    return offering;
  }

  it('the highest serial survives a log cut back to an earlier record: the pulled version stays out', async () => {
    const offering = await pulledAfterwards(await installed());
    // Cut events.log back to a record boundary before serial 3 was accepted: a valid prefix of the chain.
    const path = join(repo.dir, 'events.log');
    const lines = (await readFile(path, 'utf8')).split('\n').filter((line) => line !== '');
    const lastCheck = lines.map((line) => JSON.parse(line).type).lastIndexOf('check.requested');
    await writeFile(path, lines.slice(0, lastCheck).map((line) => `${line}\n`).join(''));

    // The cut is noticed (the chain-end anchor); set aside, the new log starts from the kept serial.
    await expect(repo.updater().start()).rejects.toMatchObject({ code: 'LOG_CORRUPT' });
    await quarantineLog(repo.dir);
    const restarted = repo.updater();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust.serial).toBe(3);
    await repo.serveRaw(offering);
    await expectRejected(restarted, 'ROLLBACK_REJECTED');
    expect(restarted.active?.version).toBe('1.0.0');
    restarted.stop();
  });

  it('the highest serial survives `log --quarantine`: the pulled version stays out', async () => {
    const offering = await pulledAfterwards(await installed());
    await quarantineLog(repo.dir, { force: true });

    const restarted = repo.updater();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust.serial).toBe(3);
    await repo.serveRaw(offering);
    await expectRejected(restarted, 'ROLLBACK_REJECTED');
    restarted.stop();
  });

  it('an equal serial is a no-op: the held manifest stays, even if the bytes differ', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    await repo.publish({ bump: false });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.manifest!.body.versions.map((v) => v.version)).toEqual(['1.0.0']);
    expect(modelRequests()).toHaveLength(1);
  });

  it('never installs a version lower than the active one, even from a newer manifest', async () => {
    await repo.addVersion('2.0.0');
    await repo.publish();
    const updater = repo.updater();
    await updater.start();
    await updater.check();
    repo.signed.versions = [];
    await repo.addVersion('1.9.0');
    await repo.publish();
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.active?.version).toBe('2.0.0');
    expect(modelRequests().filter((r) => r.path.includes('1.9.0'))).toHaveLength(0);
  });
});

describe('freeze attack', () => {
  it('MANIFEST_EXPIRED: compared with the time the check started', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    repo.signed.expires = new Date(T0 + 1000).toISOString();
    await repo.publish();
    repo.time = T0 + 2000;
    await expectRejected(updater, 'MANIFEST_EXPIRED');
  });

  it('clockSkewMs admits a manifest that expired within the allowed skew', async () => {
    const updater = await installed({ clockSkewMs: 60_000 });
    await repo.addVersion('1.1.0');
    repo.signed.expires = new Date(T0 + 1000).toISOString();
    await repo.publish();
    repo.time = T0 + 30_000;
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  });

  it('a server that answers 304 forever still lets the held manifest expire', async () => {
    const updater = await installed();
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(repo.server.requests.at(-1)!.status).toBe(304);
    repo.time = T0 + 31 * 86_400_000;
    await expectRejected(updater, 'MANIFEST_EXPIRED');
    expect(repo.server.requests.at(-1)!.status).toBe(304);
  });
});

describe('endless data', () => {
  it('a manifest beyond maxManifestBytes is MANIFEST_INVALID, and reading stops at the cap', async () => {
    const updater = await installed({ maxManifestBytes: 64 * 1024 });
    await repo.serveRaw(`{"signed": "${'x'.repeat(4 * 1024 * 1024)}"}`);
    const error = await expectRejected(updater, 'MANIFEST_INVALID');
    expect(error.message).toContain('larger than 65536 bytes');
  });

  it('a file longer than its signed size is SIZE_MISMATCH at the first extra byte', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0', { bytes: 100_000 });
    await repo.publish();
    repo.server.fault('/1.1.0/model.bin', { kind: 'extra-bytes', bytes: 10 * 1024 * 1024 });
    const disk = await repo.trustedStateOnDisk();
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'SIZE_MISMATCH' } });
    expect(updater.active?.version).toBe('1.0.0');
    // The manifest itself was good and accepted (its serial is kept); only the file was refused.
    const after = await repo.trustedStateOnDisk();
    expect(after.active).toEqual(disk.active);
    const { logHead: _anchor, ...kept } = JSON.parse(after.trust!);
    expect(kept).toEqual(updater.getSnapshot().context.trust);
    expect(updater.getSnapshot().context.trust.serial).toBe(2);
    const staged = await readdir(join(repo.dir, 'staging'), { recursive: true, withFileTypes: true });
    expect(staged.filter((entry) => entry.isFile())).toEqual([]);
  });
});

describe('slow retrieval', () => {
  it('DOWNLOAD_STALLED when no byte comes for the stall timeout: retried with back-off, then reported', async () => {
    const clock = new SimulatedClock();
    const waits: Array<string | undefined> = [];
    // Default limits: the stall timeout (30 s) runs on the updater's clock, driven here.
    const updater = await installed({
      clock,
      retry: { maxDownloadAttempts: 2, baseDelayMs: 5_000 },
      inspect: (event) => {
        const snapshot = (event as { snapshot?: { matches?: (s: unknown) => boolean; context?: { error?: { message: string } | null } } }).snapshot;
        if (event.type === '@xstate.snapshot' && event.actorRef.sessionId === event.rootId && snapshot?.matches?.({ downloading: 'retryWait' })) waits.push(snapshot.context?.error?.message);
      },
    });
    await repo.addVersion('1.1.0');
    await repo.publish();
    repo.server.fault('/1.1.0/model.bin', { kind: 'hang' });
    let settled = false;
    const result = updater.check().finally(() => (settled = true));
    const heads = () => modelRequests().filter((r) => r.path === '/1.1.0/model.bin' && r.status === 200).length;
    // The clock moves only while the chart waits on it: a hanging body whose head is out, or a back-off.
    // Real I/O in flight (the manifest over loopback, the next head) is waited for, never timed out.
    const waitingOnTheClock = () => {
      const snapshot = updater.getSnapshot();
      const attempt = snapshot.context.session?.attempt ?? 1;
      return (snapshot.matches({ downloading: 'fetching' }) && heads() >= attempt) || snapshot.matches({ downloading: 'retryWait' });
    };
    let seconds = 0;
    for (; !settled && seconds < 600; seconds++) {
      const spinningSince = Date.now();
      while (!settled && !waitingOnTheClock() && Date.now() - spinningSince < 10_000) await new Promise((resolve) => setImmediate(resolve));
      if (settled || !waitingOnTheClock()) break;
      clock.increment(1_000);
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    }
    // Stuck instead of settled: say where, rather than time out.
    const where = () => `state ${JSON.stringify(updater.getSnapshot().value)}, attempt ${updater.getSnapshot().context.session?.attempt}, heads ${heads()}, ${seconds} s simulated`;
    if (!settled) await Promise.race([result, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    expect(settled, where()).toBe(true);
    expect(await result).toMatchObject({ outcome: 'failed', error: { code: 'DOWNLOAD_STALLED' } });
    expect(new Set(waits)).toEqual(new Set([expect.stringMatching(/sent nothing for 30000 ms/)]));
    expect(modelRequests().filter((r) => r.path === '/1.1.0/model.bin')).toHaveLength(2);
    expect(updater.active?.version).toBe('1.0.0');
  });

  it('DOWNLOAD_STALLED when bytes trickle in below the minimum throughput', async () => {
    const updater = await installed({ download: { minBytesPerSecond: 1_000_000, throughputWindowMs: 300 } });
    await repo.addVersion('1.1.0', { bytes: 2_000_000 });
    await repo.publish();
    repo.server.fault('/1.1.0/model.bin', { kind: 'trickle', bytes: 100, intervalMs: 20 });
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'DOWNLOAD_STALLED' } });
    expect(result.error!.message).toMatch(/B\/s/);
    expect(updater.active?.version).toBe('1.0.0');
  });
});

describe('mix-and-match', () => {
  it('moving a file entry from one version to another breaks the signature', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    const text = await repo.publish();
    const evil = JSON.parse(text);
    evil.signed.versions[1].files = evil.signed.versions[0].files;
    await repo.serveRaw(JSON.stringify(evil));
    await expectRejected(updater, 'SIGNATURE_INVALID');
  });

  it("a file served in place of another version's file is refused (INTEGRITY_MISMATCH)", async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    await repo.publish();
    // The mirror serves 1.0.0's bytes at 1.1.0's URL, with the right length.
    await writeFile(join(repo.site, '1.1.0', 'model.bin'), await readFile(join(repo.site, '1.0.0', 'model.bin')));
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'INTEGRITY_MISMATCH' } });
    expect(updater.active?.version).toBe('1.0.0');
  });
});

describe('malicious mirrors', () => {
  it('a mirror that is down, then one that serves a forged manifest, are skipped for the next', async () => {
    const forged = await startTestServer({ root: join(repo.root, 'forged') });
    await mkdir(join(repo.root, 'forged'), { recursive: true });
    try {
      await repo.addVersion('1.0.0');
      await repo.publish();
      await writeFile(join(repo.root, 'forged', 'manifest.json'), JSON.stringify({ signed: { ...repo.signed, serial: 50 }, signatures: [{ keyid: 'a'.repeat(64), sig: `${'A'.repeat(86)}==` }] }));
      const updater = repo.updater({ manifestUrl: ['http://127.0.0.1:1/manifest.json', `${forged.url}manifest.json`, repo.manifestUrl] });
      await updater.start();
      expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
      expect(forged.requests.map((r) => r.path)).toEqual(['/manifest.json']);
      expect(updater.getSnapshot().context.trust.serial).toBe(1);
    } finally {
      await forged.close();
    }
  });

  it('when every mirror is bad, the check fails with the tampering, not the outage', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    repo.signers = [newKey()];
    await repo.publish();
    const mirrors = ['http://127.0.0.1:1/manifest.json', repo.manifestUrl];
    const viaMirrors = repo.updater({ manifestUrl: mirrors });
    updater.stop();
    await viaMirrors.start();
    const error = await expectRejected(viaMirrors, 'SIGNATURE_INVALID');
    expect(error.message).toContain('All 2 mirrors failed');
  });
});

describe('path safety', () => {
  it.each([
    ['../outside.bin', '".."'],
    ['/etc/passwd', 'absolute'],
    ['C:/model.bin', 'drive letter'],
    ['a\\b.bin', 'backslash'],
    ['a\u0000.bin', 'NUL'],
  ])('a signed path %j is MANIFEST_INVALID (%s)', async (path, reason) => {
    const updater = await installed();
    const entry = await repo.addVersion('1.1.0');
    entry.files[0]!.path = path;
    await repo.publish();
    const error = await expectRejected(updater, 'MANIFEST_INVALID');
    expect(error.message).toContain(reason);
  });

  it('paths that collide by case or Unicode normalization are MANIFEST_INVALID', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0', { files: { 'ﬁle.bin': Buffer.from('a'), 'file.bin': Buffer.from('b') } });
    await repo.publish();
    const error = await expectRejected(updater, 'MANIFEST_INVALID');
    expect(error.message).toContain('appears twice');
    await repo.addVersion('1.2.0', { files: { 'Model.bin': Buffer.from('a'), 'model.BIN': Buffer.from('b') } });
    repo.signed.versions.splice(1, 1);
    await repo.publish();
    await expectRejected(updater, 'MANIFEST_INVALID');
  });

  it('a symlink planted inside dir is not followed when writing', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0', { files: { 'sub/model.bin': Buffer.from('payload') } });
    await repo.publish();
    const outside = join(repo.root, 'outside');
    await mkdir(outside);
    await mkdir(join(repo.dir, 'staging', '1.1.0'), { recursive: true });
    await symlink(outside, join(repo.dir, 'staging', '1.1.0', 'sub'));
    const result = await updater.check();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'STORAGE_FAILED' } });
    expect(result.error!.message).toContain('symbolic link');
    expect(await readdir(outside)).toEqual([]);
    expect(updater.active?.version).toBe('1.0.0');
  });

  it('a symlink planted where the active pointer is written first is refused, and the pointer stays', async () => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    await repo.publish();
    const outside = join(repo.root, 'outside.json');
    await writeFile(outside, 'precious');
    // writeFileAtomic writes `<file>.<pid>.tmp`, then renames it over the file.
    await symlink(outside, join(repo.dir, `active.json.${process.pid}.tmp`));
    const result = await updater.check();
    expect(result.outcome).not.toBe('activated');
    expect(result.error?.message).toContain('symbolic link');
    expect(await readFile(outside, 'utf8')).toBe('precious');
    expect(updater.active?.version).toBe('1.0.0');
    expect(JSON.parse(await readFile(join(repo.dir, 'active.json'), 'utf8'))).toMatchObject({ active: { version: '1.0.0' } });
  });
});

describe('redirects', () => {
  it('a manifest redirect to another origin drops the configured headers; a same-origin one keeps them', async () => {
    const other = await startTestServer({ root: repo.site });
    try {
      await repo.addVersion('1.0.0');
      await repo.publish();
      repo.server.fault('/manifest.json', { kind: 'redirect', location: '/manifest.json?same', times: 1 });
      repo.server.fault('/manifest.json', { kind: 'redirect', location: `${other.url}manifest.json`, times: 1 });
      const updater = repo.updater({ headers: { authorization: 'Bearer secret', 'x-api-key': 'k', cookie: 'c=1' } });
      await updater.start();
      expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
      const [first, second] = repo.server.requests.filter((r) => r.path.startsWith('/manifest.json'));
      expect(first!.headers.authorization).toBe('Bearer secret');
      expect(second!.headers.authorization).toBe('Bearer secret');
      const moved = other.requests.find((r) => r.path === '/manifest.json')!;
      expect(moved.headers.authorization).toBeUndefined();
      expect(moved.headers['x-api-key']).toBeUndefined();
      expect(moved.headers.cookie).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});

describe('hostile JSON', () => {
  const cases: Array<[string, (signed: string) => Buffer | string, RegExp]> = [
    ['duplicate keys', (s) => s.replace('"schemaVersion": 1,', '"schemaVersion": 1, "schemaVersion": 1,'), /twice/],
    ['a __proto__ key', (s) => s.replace('"schemaVersion": 1,', '"schemaVersion": 1, "__proto__": {"polluted": true},'), /__proto__/],
    ['a constructor key', (s) => s.replace('"schemaVersion": 1,', '"schemaVersion": 1, "constructor": {"prototype": {"polluted": true}},'), /constructor/],
    ['deep nesting', () => `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /deeper/],
    ['a BOM', (s) => `\uFEFF${s}`, /byte-order mark/],
    ['invalid UTF-8', (s) => Buffer.concat([Buffer.from(s.slice(0, 20)), Buffer.from([0xc3, 0x28]), Buffer.from(s.slice(20))]), /UTF-8/],
    ['a number beyond the safe integers', (s) => s.replace(/"serial": \d+/, '"serial": 9007199254740993'), /safe integer/],
  ];
  it.each(cases)('%s is MANIFEST_INVALID, without pollution or crash', async (_name, mutate, message) => {
    const updater = await installed();
    await repo.addVersion('1.1.0');
    const text = await repo.publish();
    await repo.serveRaw(mutate(text));
    const error = await expectRejected(updater, 'MANIFEST_INVALID');
    expect(error.message).toMatch(message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('fail closed on incomplete file entries', () => {
  it.each([
    ['a missing hash', (file: Record<string, unknown>) => delete file.sha256],
    ['an unknown hash algorithm', (file: Record<string, unknown>) => ((file.sha512 = file.sha256), delete file.sha256)],
    ['a missing size', (file: Record<string, unknown>) => delete file.size],
  ])('%s is MANIFEST_INVALID even when signed', async (_name, mutate) => {
    const updater = await installed();
    const entry = await repo.addVersion('1.1.0');
    mutate(entry.files[0] as unknown as Record<string, unknown>);
    await repo.publish();
    await expectRejected(updater, 'MANIFEST_INVALID');
  });
});
