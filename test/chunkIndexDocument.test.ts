/**
 * Chunk indexes published beside the manifest (manifest.chunks.json), so that the manifest keeps the
 * shape clients of 0.2.0 parse (strictly: a field they do not know stops their updates for good):
 * publish writes and signs the document, moves the indexes of a site 0.3.0 wrote out of its manifest,
 * and a client updates differentially through it; a document it cannot trust costs a whole download,
 * never the update. Real files, a real loopback server, real signatures.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { chunkIndexDocumentUrl, CHUNK_INDEX_DOCUMENT_TYPE } from '../src/core/manifest/chunkIndexDocument.js';
import { acceptChunkIndexes } from '../src/core/trust/acceptChunkIndexes.js';
import { initialTrust } from '../src/core/trust/acceptManifest.js';
import { parseEnvelope, type SignedEnvelope } from '../src/core/trust/envelope.js';
import { validSigners } from '../src/core/trust/verifySignatures.js';
import { summarize } from '../src/core/log/describe.js';
import { createModelUpdater } from '../src/node/createModelUpdater.js';
import { readLogFile } from '../src/node/fileEventLog.js';
import { generateKeyPair, parsePrivateKeyText } from '../src/publish/keys.js';
import { publish } from '../src/publish/publish.js';
import { signEnvelope } from '../src/publish/sign.js';
import { parseManifestAsV020 } from './golden/v0.2.0/manifestSchema.js';
import { readChunkIndexEntries, readPublishedManifest } from './helpers/publishedSite.js';
import { startTestServer, type TestServer } from './helpers/testServer.js';

const MIB = 1024 * 1024;
const FILE = 'model.bin';
const GOLDEN_030 = path.resolve(import.meta.dirname, 'golden', 'v0.3.0');

function newKey() {
  const pair = generateKeyPair();
  return { publicKey: pair.publicKey, privateKey: parsePrivateKeyText(pair.privateKeyPem, 'test key') };
}

let tmp: string;
let site: string;
let dir: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-chunkdoc-'));
  site = path.join(tmp, 'site');
  dir = path.join(tmp, 'models');
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const signedPart = async (file: string) => parseEnvelope(JSON.parse(await readFile(file, 'utf8')), file).signed;

describe('publish', () => {
  it('writes a manifest a 0.2.0 client parses, and the chunk indexes in manifest.chunks.json, signed with the same keys', async () => {
    const key = newKey();
    await mkdir(path.join(tmp, 'in'));
    await writeFile(path.join(tmp, 'in', FILE), randomBytes(300_000));
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'in', FILE)], keys: [key.privateKey] });

    const manifest = await signedPart(path.join(site, 'manifest.json'));
    expect(() => parseManifestAsV020(manifest)).not.toThrow();
    const documentText = JSON.parse(await readFile(path.join(site, 'manifest.chunks.json'), 'utf8')) as SignedEnvelope;
    expect(documentText.signed).toMatchObject({ type: CHUNK_INDEX_DOCUMENT_TYPE, schemaVersion: 1, modelId: 'site' });
    expect(await validSigners(documentText, [key.publicKey])).toEqual(new Set([key.publicKey]));
    const [file] = (await readPublishedManifest(site)).versions[0]!.files;
    expect(file!.chunkIndex).toEqual({ url: expect.stringMatching(/^chunks\/[0-9a-f]{64}\.mucx$/), size: expect.any(Number), sha256: expect.any(String) });
  });

  it('moves the chunk indexes out of a manifest 0.3.0 wrote, keeping every one, so 0.2.0 clients read it again', async () => {
    await cp(path.join(GOLDEN_030, 'site'), site, { recursive: true });
    const key = parsePrivateKeyText(await readFile(path.join(GOLDEN_030, 'release.key'), 'utf8'), 'release.key');
    const before = (await signedPart(path.join(site, 'manifest.json'))) as { versions: Array<{ files: Array<{ sha256: string; chunkIndex: unknown }> }> };
    expect(() => parseManifestAsV020(before)).toThrow(/chunkIndex/);
    const oldRefs = before.versions.flatMap((entry) => entry.files.map((file) => ({ sha256: file.sha256, chunkIndex: file.chunkIndex })));

    await mkdir(path.join(tmp, 'in'));
    await writeFile(path.join(tmp, 'in', FILE), randomBytes(1000));
    await publish({ out: site, version: '1.2.0', inputs: [path.join(tmp, 'in', FILE)], keys: [key] });

    const after = await signedPart(path.join(site, 'manifest.json'));
    expect(() => parseManifestAsV020(after)).not.toThrow();
    const entries = await readChunkIndexEntries(site);
    expect(entries).toHaveLength(3);
    expect(entries).toEqual(expect.arrayContaining(oldRefs.map((ref) => expect.objectContaining(ref))));
  });

  it('refuses to publish onto a chunk-index document it cannot read back, and changes nothing', async () => {
    await mkdir(path.join(tmp, 'in'));
    await writeFile(path.join(tmp, 'in', FILE), randomBytes(1000));
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'in', FILE)] });
    await writeFile(path.join(site, 'manifest.chunks.json'), '{ "cut short');
    const manifestBefore = await readFile(path.join(site, 'manifest.json'), 'utf8');
    await expect(publish({ out: site, version: '1.1.0', inputs: [path.join(tmp, 'in', FILE)] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('Delete it and publish again') });
    expect(await readFile(path.join(site, 'manifest.json'), 'utf8')).toBe(manifestBefore);
    expect(await readFile(path.join(site, 'manifest.chunks.json'), 'utf8')).toBe('{ "cut short');
    await expect(readdir(path.join(site, '1.1.0'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe("0.2.0's manifest schema (frozen)", () => {
  it('refuses the fields the README names as newer than 0.2.0, and takes the same manifest without them', () => {
    const file = { path: 'model.bin', size: 1, sha256: 'a'.repeat(64), url: '1.0.0/model.bin' };
    const version = { version: '1.0.0', channel: 'stable', files: [file] };
    const manifest = (entry: Record<string, unknown>) => ({ schemaVersion: 1, modelId: 'asr', versions: [{ ...version, ...entry }] });
    expect(() => parseManifestAsV020(manifest({}))).not.toThrow();
    expect(() => parseManifestAsV020(manifest({ requires: { app: '>=1' } }))).not.toThrow();
    for (const newer of [{ metadata: {} }, { requires: { runtime: { onnxruntime: '>=1' } } }, { pulled: true }, { files: [{ ...file, chunkIndex: { url: 'c', size: 68, sha256: 'b'.repeat(64) } }] }]) {
      expect(() => parseManifestAsV020(manifest(newer))).toThrow(/refuses/);
    }
  });
});

describe('chunkIndexDocumentUrl', () => {
  it('names the document after the manifest, beside it, without its query', () => {
    expect(chunkIndexDocumentUrl('https://cdn.example/m/manifest.json')).toBe('https://cdn.example/m/manifest.chunks.json');
    expect(chunkIndexDocumentUrl('https://cdn.example/m/whisper.json?sig=abc')).toBe('https://cdn.example/m/whisper.chunks.json');
    expect(chunkIndexDocumentUrl('https://cdn.example/m/feed')).toBe('https://cdn.example/m/feed.chunks.json');
    expect(chunkIndexDocumentUrl('https://cdn.example/m/')).toBe('https://cdn.example/m/manifest.chunks.json');
    expect(chunkIndexDocumentUrl('https://cdn.example/m/a%20b:c.json')).toBe('https://cdn.example/m/a%20b:c.chunks.json');
  });
});

describe('acceptChunkIndexes', () => {
  it('refuses a signed manifest offered as the document: the signature is good, the type is not', async () => {
    const key = newKey();
    const manifestEnvelope = signEnvelope({ schemaVersion: 1, modelId: 'm', versions: [] }, [key.privateKey]);
    const trust = initialTrust([key.publicKey], 1);
    await expect(acceptChunkIndexes(manifestEnvelope, { trust, unsigned: false, modelId: 'm' }, 'the document')).rejects.toMatchObject({ code: 'MANIFEST_INVALID', message: expect.stringContaining('"type"') });
  });

  it('ignores fields it does not know, so later versions can add to the document', async () => {
    const key = newKey();
    const entry = { sha256: 'a'.repeat(64), size: 100, chunkIndex: { url: 'chunks/x.mucx', size: 68, sha256: 'b'.repeat(64), future: 1 }, future: true };
    const document = signEnvelope({ type: CHUNK_INDEX_DOCUMENT_TYPE, schemaVersion: 1, modelId: 'm', files: [entry], addedLater: {} }, [key.privateKey]);
    const entries = await acceptChunkIndexes(document, { trust: initialTrust([key.publicKey], 1), unsigned: false, modelId: 'm' }, 'the document');
    expect(entries).toEqual([{ sha256: 'a'.repeat(64), size: 100, chunkIndex: { url: 'chunks/x.mucx', size: 68, sha256: 'b'.repeat(64) } }]);
  });
});

describe('a signed differential update through the document (loopback server)', () => {
  const key = newKey();
  let server: TestServer;
  let v1: Buffer;
  let v2: Buffer;
  beforeEach(async () => {
    // 12 MiB (a differential download starts at 8 MiB); v2 changes three 64 KiB regions.
    v1 = randomBytes(12 * MIB);
    v2 = Buffer.from(v1);
    for (const at of [1 * MIB, 5 * MIB, 11 * MIB]) randomBytes(64 * 1024).copy(v2, at);
    for (const [name, bytes] of [['v1', v1], ['v2', v2]] as const) {
      await mkdir(path.join(tmp, name));
      await writeFile(path.join(tmp, name, FILE), bytes);
    }
    await mkdir(site, { recursive: true });
    server = await startTestServer({ root: site });
  });
  afterEach(async () => {
    await server.close();
  });

  const updater = () => createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir, trustedKeys: [key.publicKey], policy: { approval: 'auto', checkOnStart: false } });
  const documentRequests = () => server.requests.filter((request) => request.path === '/manifest.chunks.json');
  const v2Bytes = () => server.requests.filter((request) => request.path === `/2.0.0/${FILE}`).reduce((sum, request) => sum + request.bytesSent, 0);

  async function installV1ThenPublishV2(): Promise<void> {
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'v1', FILE)], keys: [key.privateKey] });
    const first = updater();
    await first.start();
    expect(await first.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    first.stop();
    // A first install reads the document too: it keeps 1.0.0's index for the update that copies from it.
    expect(documentRequests()).toHaveLength(1);
    expect((await readdir(path.join(dir, 'chunk-index'))).map((name) => name.split('.')[0])).toEqual([sha256(v1)]);
    server.requests.length = 0;
    await publish({ out: site, version: '2.0.0', inputs: [path.join(tmp, 'v2', FILE)], keys: [key.privateKey] });
  }

  async function updateToV2(): Promise<{ size: number; fetchBytes?: number }[]> {
    const second = updater();
    const announced: Array<{ size: number; fetchBytes?: number }> = [];
    second.on('update-available', (event) => announced.push(event));
    await second.start();
    const result = await second.check();
    second.stop();
    expect(result).toMatchObject({ outcome: 'activated', version: '2.0.0' });
    expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);
    return announced;
  }

  it('reads the document once with the new manifest and fetches only what changed', async () => {
    await installV1ThenPublishV2();
    const announced = await updateToV2();
    expect(documentRequests()).toHaveLength(1);
    expect(v2Bytes()).toBeGreaterThanOrEqual(3 * 64 * 1024);
    expect(v2Bytes()).toBeLessThan(v2.length / 4);
    expect(announced).toEqual([expect.objectContaining({ size: v2.length, fetchBytes: v2Bytes() })]);
    // The audit trail says what each download fetched: all of 1.0.0, the changed spans of 2.0.0.
    const completed = readLogFile(path.join(dir, 'events.log')).records.filter((record) => record.type === 'download.completed');
    expect(completed.map((record) => (record.data as { fetchedBytes?: number }).fetchedBytes)).toEqual([v1.length, v2Bytes()]);
    expect(completed.map((record) => summarize(record))).toEqual([`fetched ${v1.length} of ${v1.length} bytes`, `fetched ${v2Bytes()} of ${v2.length} bytes`]);
  });

  const untrusted: Array<[string, (document: SignedEnvelope<Record<string, unknown>>) => unknown]> = [
    ['signed by a key the client does not trust', (document) => signEnvelope(document.signed, [newKey().privateKey])],
    ['not signed, beside a signed manifest', (document) => document.signed],
    ['altered after it was signed', (document) => ({ ...document, signed: { ...document.signed, note: 'added by a mirror' } })],
    ['signed by the right key, for another model', (document) => signEnvelope({ ...document.signed, modelId: 'another-model' }, [key.privateKey])],
    ['not JSON', () => '{ "signed": '],
    ['missing (404)', () => null],
  ];
  it.each(untrusted)('a document %s costs a whole download, never the update', async (_case, spoil) => {
    await installV1ThenPublishV2();
    const file = path.join(site, 'manifest.chunks.json');
    const spoiled = spoil(JSON.parse(await readFile(file, 'utf8')) as SignedEnvelope<Record<string, unknown>>);
    if (spoiled === null) await rm(file);
    else await writeFile(file, typeof spoiled === 'string' ? spoiled : JSON.stringify(spoiled));
    const announced = await updateToV2();
    expect(documentRequests()).toHaveLength(1);
    expect(v2Bytes()).toBe(v2.length);
    expect(announced).toEqual([expect.objectContaining({ size: v2.length, fetchBytes: v2.length })]);
  });

  it('a document that does not come within the manifest deadline costs a whole download, never the update', async () => {
    await installV1ThenPublishV2();
    server.fault('/manifest.chunks.json', { kind: 'hang' });
    const clock = new SimulatedClock();
    clock.set(Date.now());
    const second = createModelUpdater({ manifestUrl: `${server.url}manifest.json`, dir, trustedKeys: [key.publicKey], clock, policy: { approval: 'auto', checkOnStart: false } });
    await second.start();
    const result = second.check();
    // The clock moves once the document's request is out and hanging: the default deadline (30 s) passes.
    while (documentRequests().length === 0) await new Promise((resolve) => setImmediate(resolve));
    clock.increment(30_000);
    expect(await result).toMatchObject({ outcome: 'activated', version: '2.0.0' });
    second.stop();
    expect(v2Bytes()).toBe(v2.length);
    expect((await readFile(path.join(dir, 'versions', '2.0.0', FILE))).equals(v2)).toBe(true);
  });

  it('checks the document against the keys the manifest left trusted: after a rotation, the new ones', async () => {
    await installV1ThenPublishV2();
    // 2.0.0 is re-signed as a rotation to a new key (signed by the old and the new one); the document
    // only by the new key, which the client trusts only once it has taken the rotation.
    const next = newKey();
    await publish({ out: site, keys: [key.privateKey, next.privateKey], inputs: [], rotateTo: { keys: [next.publicKey], threshold: 1 } });
    const file = path.join(site, 'manifest.chunks.json');
    const document = JSON.parse(await readFile(file, 'utf8')) as SignedEnvelope;
    await writeFile(file, JSON.stringify(signEnvelope(document.signed, [next.privateKey])));
    await updateToV2();
    expect(documentRequests()).toHaveLength(1);
    expect(v2Bytes()).toBeLessThan(v2.length / 4);
  });

  it('asks for no document when the candidate has no file a differential download would use', async () => {
    await publish({ out: site, version: '1.0.0', inputs: [path.join(tmp, 'v1', FILE)], keys: [key.privateKey] });
    const first = updater();
    await first.start();
    await first.check();
    first.stop();
    server.requests.length = 0;
    await mkdir(path.join(tmp, 'small'));
    await writeFile(path.join(tmp, 'small', FILE), randomBytes(100_000));
    await publish({ out: site, version: '2.0.0', inputs: [path.join(tmp, 'small', FILE)], keys: [key.privateKey] });
    const second = updater();
    await second.start();
    expect(await second.check()).toMatchObject({ outcome: 'activated', version: '2.0.0' });
    second.stop();
    expect(documentRequests()).toEqual([]);
  });
});
