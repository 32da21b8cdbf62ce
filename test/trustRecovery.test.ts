/**
 * Fast-forward recovery of the anti-rollback serial (issue 12 §2): a leaked key that signed a huge serial
 * freezes the ratchet until a key rotation, signed by the current threshold and the new keys, resets it.
 * Rotations chain one after the other: one that skips a rotation or replays an old one is refused.
 *
 * The publisher is the real one (src/publish, the code behind `publish --rotate-key`); the attacker signs
 * with src/publish/sign; the client is the Node updater against a real loopback HTTP server.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest, TrustState } from '../machines/types.js';
import { replay } from '../src/core/log/replay.js';
import { acceptManifest } from '../src/core/trust/acceptManifest.js';
import { keySetId } from '../src/core/trust/keySet.js';
import { createModelUpdater, type ModelUpdater } from '../src/node/createModelUpdater.js';
import { quarantineLog } from '../src/node/quarantineLog.js';
import { publish } from '../src/publish/publish.js';
import { signEnvelope } from '../src/publish/sign.js';
import { newKey, T0, type TestKey } from './helpers/signedRepository.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const FROZEN = 2 ** 52;

let root: string;
let site: string;
let dir: string;
let server: TestServer;
let gen0: TestKey;
const updaters: Array<ModelUpdater<any>> = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-updater-recovery-'));
  site = join(root, 'site');
  dir = join(root, 'models');
  await mkdir(site, { recursive: true });
  server = await startTestServer({ root: site });
  gen0 = newKey();
  publisherCopy = null;
});
afterEach(async () => {
  for (const updater of updaters.splice(0)) updater.stop();
  await server.close();
  await rm(root, { recursive: true, force: true });
});

const manifestPath = () => join(site, 'manifest.json');
const modelRequests = () => server.requests.filter((request) => !request.path.endsWith('manifest.json'));

/** The publisher's own manifest while the service serves something else (a forgery, a replay). */
let publisherCopy: Buffer | null = null;

/** Serves `bytes` in place of the publisher's manifest, until the next release. */
async function serve(bytes: Buffer | string): Promise<void> {
  publisherCopy ??= await readFile(manifestPath());
  await writeFile(manifestPath(), bytes);
}

/** The publisher: `publish` as the CLI runs it, signed with `keys`, from its own last manifest. */
async function release(keys: TestKey[], options: { version?: string; rotateTo?: TestKey[] } = {}): Promise<Buffer> {
  if (publisherCopy) await writeFile(manifestPath(), publisherCopy);
  publisherCopy = null;
  const inputs: string[] = [];
  if (options.version) {
    const file = join(root, 'src', options.version, 'model.bin');
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, randomBytes(2048));
    inputs.push(file);
  }
  await publish({
    out: site,
    modelId: 'asr',
    ...(options.version ? { version: options.version } : {}),
    inputs,
    keys: keys.map((key) => key.privateKey),
    now: () => T0,
    ...(options.rotateTo ? { rotateTo: { keys: options.rotateTo.map((key) => key.publicKey), threshold: 1 } } : {}),
  });
  return readFile(manifestPath());
}

/** The attacker: re-signs what the service serves with a leaked key, after `change`. */
async function forge(keys: TestKey[], change: (signed: Manifest) => void): Promise<void> {
  const { signed } = JSON.parse(await readFile(manifestPath(), 'utf8'));
  change(signed);
  await serve(JSON.stringify(signEnvelope(signed, keys.map((key) => key.privateKey))));
}

function client(trusted: TestKey[] = [gen0]): ModelUpdater<any> {
  const updater = createModelUpdater({
    manifestUrl: `${server.url}manifest.json`,
    dir,
    trustedKeys: trusted.map((key) => key.publicKey),
    policy: { checkOnStart: false },
    now: () => T0,
  });
  updaters.push(updater);
  return updater;
}

const trustOnDisk = async () => JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'));

/** A check that must be refused with `code`, leaving what the updater trusts where it was. */
async function expectRefused(updater: ModelUpdater<any>, code: string, message?: RegExp) {
  const trust = updater.getSnapshot().context.trust;
  const { logHead: _anchor, ...disk } = await trustOnDisk();
  const active = updater.active?.version ?? null;
  const fetched = modelRequests().length;
  const result = await updater.check();
  expect(result).toMatchObject({ outcome: 'failed', error: { code } });
  if (message) expect(result.error!.message).toMatch(message);
  expect(updater.getSnapshot().context.trust).toEqual(trust);
  const { logHead: _after, ...diskAfter } = await trustOnDisk();
  expect(diskAfter).toEqual(disk);
  expect(updater.active?.version ?? null).toBe(active);
  expect(modelRequests().length).toBe(fetched);
  expect(replay(updater.log.records())!.context.trust).toEqual(trust);
}

/** 1.0.0 installed at serial 1, then a leaked gen0 key pushed the serial to 2^52. */
async function frozen(): Promise<ModelUpdater<any>> {
  await release([gen0], { version: '1.0.0' });
  const updater = client();
  await updater.start();
  expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
  await forge([gen0], (signed) => (signed.serial = FROZEN));
  expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
  expect(updater.getSnapshot().context.trust.serial).toBe(FROZEN);
  return updater;
}

describe('fast-forward recovery', () => {
  it('a frozen ratchet is recovered by a rotation; the leaked key can no longer sign anything accepted', async () => {
    const updater = await frozen();
    // Frozen: every honest manifest from now on is "older" than the leaked serial.
    await release([gen0], { version: '1.1.0' });
    await expectRefused(updater, 'ROLLBACK_REJECTED');

    // The publisher rotates away from the leaked key, signed by the old and the new keys.
    const gen1 = newKey();
    await release([gen0, gen1], { rotateTo: [gen1] });
    const rotating = JSON.parse(await readFile(manifestPath(), 'utf8')).signed;
    expect(rotating).toMatchObject({ serial: 3, trust: { keys: [gen1.publicKey], threshold: 1, version: 1, previous: keySetId([gen0.publicKey], 1) } });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    const recovered: Partial<TrustState> = { keys: [gen1.publicKey], threshold: 1, serial: 3, rotation: 1 };
    expect(updater.getSnapshot().context.trust).toMatchObject(recovered);
    expect(await trustOnDisk()).toMatchObject(recovered);

    // The leaked key, alone or with any serial, is refused now.
    await forge([gen0], (signed) => {
      signed.serial = FROZEN + 1;
      delete signed.trust;
    });
    await expectRefused(updater, 'SIGNATURE_INVALID');
    // Nor can it rotate again from the set it belonged to.
    const attacker = newKey();
    await release([gen1], { version: '1.2.0' });
    await forge([gen0, attacker], (signed) => (signed.trust = { keys: [attacker.publicKey], threshold: 1, version: 2, previous: keySetId([gen0.publicKey], 1) }));
    await expectRefused(updater, 'SIGNATURE_INVALID');

    // The new key signs on, with the strict ratchet again; a restart keeps all of it.
    await release([gen1], { version: '1.3.0' });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.3.0' });
    updater.stop();
    const restarted = client();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust).toMatchObject({ keys: [gen1.publicKey], serial: 5, rotation: 1 });
  });

  it('the rotation outlives a log set aside from before it, though its serial is below the frozen one', async () => {
    const updater = await frozen();
    const gen1 = newKey();
    await release([gen0, gen1], { rotateTo: [gen1] });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    updater.stop();
    // Cut the log back to before the rotation was accepted, then set it aside as the error says.
    const path = join(dir, 'events.log');
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    const lastCheck = lines.map((line) => JSON.parse(line).type).lastIndexOf('check.requested');
    await writeFile(path, lines.slice(0, lastCheck).map((line) => `${line}\n`).join(''));
    await expect(client().start()).rejects.toMatchObject({ code: 'LOG_CORRUPT' });
    await quarantineLog(dir);
    const restarted = client();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust).toMatchObject({ keys: [gen1.publicKey], serial: 2, rotation: 1 });
    await forge([gen0], (signed) => (signed.serial = FROZEN + 1));
    await expectRefused(restarted, 'SIGNATURE_INVALID');
  });

  it('a trust state kept outside the log wins over the log by its rotation, not only by its serial', async () => {
    const updater = await frozen();
    const gen1 = newKey();
    await release([gen0, gen1], { rotateTo: [gen1] });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    updater.stop();
    // A log that ends before the rotation, with no chain-end anchors (as a 0.1.0 folder has none).
    const path = join(dir, 'events.log');
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    const lastCheck = lines.map((line) => JSON.parse(line).type).lastIndexOf('check.requested');
    await writeFile(path, lines.slice(0, lastCheck).map((line) => `${line}\n`).join(''));
    const { logHead: _t, ...trust } = await trustOnDisk();
    await writeFile(join(dir, 'trust.json'), JSON.stringify(trust));
    const { logHead: _p, ...pointer } = JSON.parse(await readFile(join(dir, 'active.json'), 'utf8'));
    await writeFile(join(dir, 'active.json'), JSON.stringify(pointer));

    const restarted = client();
    await restarted.start();
    expect(restarted.getSnapshot().context.trust).toMatchObject({ keys: [gen1.publicKey], serial: 2, rotation: 1 });
    expect(restarted.log.records().filter((r) => r.type === 'trust.reset')).toHaveLength(1);
    await forge([gen0], (signed) => (signed.serial = FROZEN + 1));
    await expectRefused(restarted, 'SIGNATURE_INVALID');
  });
});

describe('rotation signatures', () => {
  it('a rotation not signed by the current threshold is refused', async () => {
    await release([gen0], { version: '1.0.0' });
    const updater = client();
    await updater.start();
    await updater.check();
    const gen1 = newKey();
    await release([gen0, gen1], { rotateTo: [gen1] });
    expect(JSON.parse(await readFile(manifestPath(), 'utf8')).signed.trust).toMatchObject({ version: 1 });
    // The same rotation with the current key's signature left off (as a holder of only the new key could make).
    await forge([gen1], () => undefined);
    await expectRefused(updater, 'SIGNATURE_INVALID');
  });

  it('a rotation not signed by the new keys is refused', async () => {
    await release([gen0], { version: '1.0.0' });
    const updater = client();
    await updater.start();
    await updater.check();
    await release([gen0], { rotateTo: [newKey()] });
    await expectRefused(updater, 'SIGNATURE_INVALID', /new keys/);
  });
});

describe('the rotation chain', () => {
  it('a rotation that skips one is refused, even when the skipped-over keys sign it too', async () => {
    await release([gen0], { version: '1.0.0' });
    const updater = client();
    await updater.start();
    await updater.check();
    // Two rotations while the client does not check: it never sees the first.
    const gen1 = newKey();
    const gen2 = newKey();
    await release([gen0, gen1], { rotateTo: [gen1] });
    await release([gen1, gen2], { rotateTo: [gen2] });
    expect(JSON.parse(await readFile(manifestPath(), 'utf8')).signed.trust).toMatchObject({ version: 2, previous: keySetId([gen1.publicKey], 1) });
    await expectRefused(updater, 'SIGNATURE_INVALID', /skipped/);
    // Signed by gen0 as well (two generations back): the signatures count, the chain does not link.
    await forge([gen0, gen1, gen2], () => undefined);
    await expectRefused(updater, 'SIGNATURE_INVALID', /skipped/);
  });

  it('an old rotation replayed is refused', async () => {
    await release([gen0], { version: '1.0.0' });
    const updater = client();
    await updater.start();
    await updater.check();
    const gen1 = newKey();
    const first = await release([gen0, gen1], { rotateTo: [gen1] });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    // Rotating back to gen0: the first rotation (from gen0, signed by gen0) would pass every signature check.
    const second = await release([gen1, gen0], { rotateTo: [gen0] });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [gen0.publicKey], rotation: 2, serial: 3 });
    await serve(first);
    await expectRefused(updater, 'ROLLBACK_REJECTED', /replays key rotation 1/);
    // The latest rotation replayed after newer manifests: no rotation, and its serial is old.
    await release([gen0], { version: '1.1.0' });
    expect(await updater.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await serve(second);
    await expectRefused(updater, 'ROLLBACK_REJECTED');
  });

  it('a rotation published before chains (no version, no previous) is still taken, under the strict ratchet', async () => {
    await release([gen0], { version: '1.0.0' });
    const updater = client();
    await updater.start();
    await updater.check();
    const gen1 = newKey();
    // Made by the publisher of 0.1.0: a rotation without a chain.
    await forge([gen0, gen1], (signed) => {
      signed.serial = 2;
      signed.trust = { keys: [gen1.publicKey], threshold: 1 };
    });
    const legacy = await readFile(manifestPath());
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [gen1.publicKey], serial: 2 });
    expect(updater.getSnapshot().context.trust.rotation ?? 0).toBe(0);
    // Unchained, it does not reset the serial.
    const gen2 = newKey();
    await forge([gen1, gen2], (signed) => {
      signed.serial = 1;
      signed.trust = { keys: [gen2.publicKey], threshold: 1 };
    });
    await expectRefused(updater, 'ROLLBACK_REJECTED');
    // The publisher's next rotation (made today, from the legacy manifest) chains on from it: version 1, from gen1.
    publisherCopy = legacy;
    await release([gen1, gen2], { rotateTo: [gen2] });
    expect(JSON.parse(await readFile(manifestPath(), 'utf8')).signed.trust).toMatchObject({ version: 1, previous: keySetId([gen1.publicKey], 1) });
    expect(await updater.check()).toMatchObject({ outcome: 'up-to-date' });
    expect(updater.getSnapshot().context.trust).toMatchObject({ keys: [gen2.publicKey], rotation: 1 });
  });
});

describe('acceptManifest on rotations', () => {
  const policy = (trust: TrustState) => ({ trust, allowUnsigned: false, now: T0, clockSkewMs: 0 });
  const base = (serial: number, trust?: Manifest['trust']): Manifest => ({
    schemaVersion: 1,
    modelId: 'asr',
    serial,
    expires: new Date(T0 + 86_400_000).toISOString(),
    ...(trust ? { trust } : {}),
    versions: [],
  });
  const state = (keys: TestKey[], serial: number, rotation?: number): TrustState => ({
    keys: keys.map((key) => key.publicKey).sort(),
    threshold: 1,
    serial,
    anchor: `1:${gen0.publicKey}`,
    ...(rotation ? { rotation } : {}),
  });

  it('resets the serial floor to the rotating manifest\'s own, and counts the rotation', async () => {
    const gen1 = newKey();
    const rotation = base(7, { keys: [gen1.publicKey], threshold: 1, version: 1, previous: keySetId([gen0.publicKey], 1) });
    const accepted = await acceptManifest(signEnvelope(rotation, [gen0.privateKey, gen1.privateKey]), policy(state([gen0], FROZEN)), 'the manifest');
    expect(accepted).toMatchObject({ rotated: true, sameSerial: false, trust: { keys: [gen1.publicKey], serial: 7, rotation: 1 } });
  });

  it('a re-declaration of the current keys does not move the rotation number (a leaked key cannot block the recovery)', async () => {
    const gen1 = newKey();
    const pushed = base(8, { keys: [gen0.publicKey], threshold: 1, version: 1_000_000, previous: keySetId([gen1.publicKey], 1) });
    const accepted = await acceptManifest(signEnvelope(pushed, [gen0.privateKey]), policy(state([gen0], 2)), 'the manifest');
    expect(accepted).toMatchObject({ rotated: false, trust: { keys: [gen0.publicKey], serial: 8 } });
    expect(accepted.trust.rotation).toBeUndefined();
    const rotation = base(3, { keys: [gen1.publicKey], threshold: 1, version: 1, previous: keySetId([gen0.publicKey], 1) });
    expect(await acceptManifest(signEnvelope(rotation, [gen0.privateKey, gen1.privateKey]), policy(accepted.trust), 'the manifest')).toMatchObject({
      rotated: true,
      trust: { keys: [gen1.publicKey], serial: 3, rotation: 1 },
    });
  });

  it('a host configured with the keys of a later rotation follows the next one; from then on they come one by one', async () => {
    const gen1 = newKey();
    const gen2 = newKey();
    const configured = { ...state([gen1], 2), anchor: `1:${gen1.publicKey}` };
    const third = base(9, { keys: [gen2.publicKey], threshold: 1, version: 3, previous: keySetId([gen1.publicKey], 1) });
    const accepted = await acceptManifest(signEnvelope(third, [gen1.privateKey, gen2.privateKey]), policy(configured), 'the manifest');
    expect(accepted).toMatchObject({ rotated: true, trust: { keys: [gen2.publicKey], serial: 9, rotation: 3 } });
    const gen3 = newKey();
    const skipping = base(10, { keys: [gen3.publicKey], threshold: 1, version: 5, previous: keySetId([gen2.publicKey], 1) });
    await expect(acceptManifest(signEnvelope(skipping, [gen2.privateKey, gen3.privateKey]), policy(accepted.trust), 'the manifest')).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
      message: expect.stringContaining('rotation 4 was skipped'),
    });
  });

  it('a manifest whose trust names a version without the set it rotates from is MANIFEST_INVALID', async () => {
    const gen1 = newKey();
    const half = base(2, { keys: [gen1.publicKey], threshold: 1, version: 1 });
    await expect(acceptManifest(signEnvelope(half, [gen0.privateKey, gen1.privateKey]), policy(state([gen0], 1)), 'the manifest')).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
  });
});
