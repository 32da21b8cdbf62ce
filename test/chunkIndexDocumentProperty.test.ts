/**
 * Property: whatever a server serves as the chunk-index document beside a good signed manifest (random
 * bytes, a hostile fragment spliced into a good document, entries of any shape signed by the trusted
 * key, by another key or altered after signing), the check still succeeds with that manifest, and a
 * file gets a chunk index only from an entry the trusted key signed for exactly its SHA-256 and size,
 * never replacing one the manifest names itself. Served through the fetchManifest actor the updater runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import type { ChunkIndexRef, FetchManifestInput, FetchManifestOutput, Manifest, UpdaterConfig } from '../machines/types.js';
import { createFetchManifest } from '../src/core/actors/fetchManifest.js';
import { CHUNK_INDEX_DOCUMENT_TYPE } from '../src/core/manifest/chunkIndexDocument.js';
import { initialTrust } from '../src/core/trust/acceptManifest.js';
import { signEnvelope } from '../src/publish/sign.js';
import { newKey, T0 } from './helpers/signedRepository.js';

const key = newKey();
const stranger = newKey();
const MIB = 1024 * 1024;
const hex = (c: string) => c.repeat(64);
const IN_MANIFEST: ChunkIndexRef = { url: 'chunks/old.mucx', size: 100, sha256: hex('e') };

/** Three files: two without an index, one (0.3.0-style) with its own. */
const manifest: Manifest = {
  schemaVersion: 1,
  modelId: 'asr',
  serial: 7,
  expires: new Date(T0 + 86_400_000).toISOString(),
  versions: [
    {
      version: '1.1.0',
      channel: 'stable',
      files: [
        { path: 'model.bin', size: 64 * MIB, sha256: hex('a'), url: '1.1.0/model.bin' },
        { path: 'decoder.bin', size: 32 * MIB, sha256: hex('b'), url: '1.1.0/decoder.bin' },
        { path: 'encoder.bin', size: 16 * MIB, sha256: hex('c'), url: '1.1.0/encoder.bin', chunkIndex: IN_MANIFEST },
      ],
    },
  ],
};
const files = manifest.versions[0]!.files;
const config = { appVersion: null, channel: 'stable', skip: [], pin: null, installId: null } as unknown as UpdaterConfig;

/** Mostly the common, valid thing, sometimes an odd one: one bad entry spoils the whole document, so
 * a search that made odd ones as often as valid ones would almost never reach a valid document. */
const mostly = <T,>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) => fc.oneof({ arbitrary: usual, weight: 9 }, { arbitrary: odd, weight: 1 });
const ref = fc.record({
  url: mostly(fc.constantFrom('chunks/x.mucx', 'chunks/y.mucx'), fc.constantFrom('../x', 'https://elsewhere.example/x', '')),
  size: mostly(fc.integer({ min: 1, max: 104 }), fc.integer({ min: -1, max: 2 * MIB })),
  sha256: mostly(fc.constantFrom(hex('1'), hex('2')), fc.constant('short')),
});
/** An entry for one of the files (at its size or another), or for content the manifest does not have. */
const entry = fc.record({ sha256: fc.constantFrom(hex('a'), hex('b'), hex('c'), hex('d')), size: fc.constantFrom(64 * MIB, 32 * MIB, 16 * MIB, 5), chunkIndex: ref });
const payload = fc.record({
  type: mostly(fc.constant(CHUNK_INDEX_DOCUMENT_TYPE), fc.constant('model-updater/manifest')),
  schemaVersion: mostly(fc.constant(1), fc.constant(2)),
  modelId: mostly(fc.constant('asr'), fc.constant('other')),
  files: mostly(fc.uniqueArray(entry, { selector: (e) => e.sha256, maxLength: 4 }), fc.array(entry, { maxLength: 5 })),
});

type Served = { bytes: Uint8Array; trusted: Record<string, unknown> | null };
const text = (value: unknown) => Buffer.from(JSON.stringify(value));
const served: fc.Arbitrary<Served> = fc.oneof(
  payload.map((signed) => ({ bytes: text(signEnvelope(signed, [key.privateKey])), trusted: signed })),
  payload.map((signed) => ({ bytes: text(signEnvelope(signed, [stranger.privateKey])), trusted: null })),
  payload.map((signed) => ({ bytes: text(signed), trusted: null })),
  fc.tuple(payload, fc.string({ maxLength: 4 })).map(([signed, extra]) => ({ bytes: text({ ...signEnvelope(signed, [key.privateKey]), signed: { ...signed, note: extra } }), trusted: null })),
  fc.tuple(payload, fc.nat(), fc.constantFrom('1e400', '{"__proto__":1}', '"\\ud800"', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', ',', '\u0000')).map(([signed, at, fragment]) => {
    const good = JSON.stringify(signEnvelope(signed, [key.privateKey]));
    const cut = at % (good.length + 1);
    return { bytes: Buffer.from(good.slice(0, cut) + fragment + good.slice(cut)), trusted: null };
  }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes, trusted: null })),
);

async function check(document: Uint8Array): Promise<FetchManifestOutput> {
  const logic = createFetchManifest({
    manifestUrl: 'https://updates.example/m/manifest.json',
    maxBytes: MIB,
    timeoutMs: 30_000,
    wantsChunkIndexes: () => true,
    fetch: async (request) => {
      const url = new URL(request instanceof Request ? request.url : String(request));
      const body = url.pathname === '/m/manifest.json' ? text(signEnvelope(manifest, [key.privateKey])) : url.pathname === '/m/manifest.chunks.json' ? document : null;
      return body === null ? new Response('not found', { status: 404 }) : new Response(body as Uint8Array<ArrayBuffer>, { status: 200 });
    },
  });
  const input: FetchManifestInput = { etag: null, startedAt: T0, trust: { ...initialTrust([key.publicKey], 1), serial: 3 }, held: null, selection: { config, active: null, quarantine: [], manifest: null } };
  return toPromise(createActor(logic, { input }).start());
}

/** What a trusted document may give each file: the ref of an entry for exactly its content, if valid. */
function expectedIndexes(trusted: Record<string, unknown> | null): Array<ChunkIndexRef | undefined> {
  const valid = (value: Record<string, unknown> | null) => {
    if (value === null || value.type !== CHUNK_INDEX_DOCUMENT_TYPE || value.schemaVersion !== 1 || value.modelId !== 'asr') return null;
    const entries = value.files as Array<{ sha256: string; size: number; chunkIndex: ChunkIndexRef }>;
    const seen = new Set(entries.map((e) => e.sha256));
    const refOk = (r: ChunkIndexRef, size: number) => r.url.length > 0 && r.size > 0 && /^[0-9a-f]{64}$/.test(r.sha256) && r.size <= 32 + 36 * (Math.ceil(size / 4096) + 1);
    return seen.size === entries.length && entries.every((e) => refOk(e.chunkIndex, e.size)) ? entries : null;
  };
  const entries = valid(trusted);
  return files.map((file) => file.chunkIndex ?? entries?.find((e) => e.sha256 === file.sha256 && e.size === file.size)?.chunkIndex);
}

describe('a hostile chunk-index document beside a good manifest', () => {
  it('the property is not vacuous: a good signed document gives the files their indexes', async () => {
    const signed = { type: CHUNK_INDEX_DOCUMENT_TYPE, schemaVersion: 1, modelId: 'asr', files: [{ sha256: hex('a'), size: 64 * MIB, chunkIndex: { url: 'chunks/a.mucx', size: 68, sha256: hex('1') } }] };
    const output = await check(text(signEnvelope(signed, [key.privateKey])));
    expect(output.notModified).toBe(false);
    expect((output as { manifest: Manifest }).manifest.versions[0]!.files.map((file) => file.chunkIndex)).toEqual([{ url: 'chunks/a.mucx', size: 68, sha256: hex('1') }, undefined, IN_MANIFEST]);
  });

  it('never fails the check, and indexes come only from entries the trusted key signed for exactly that content', async () => {
    await fc.assert(
      fc.asyncProperty(served, async ({ bytes, trusted }) => {
        const output = await check(bytes);
        expect(output.notModified).toBe(false);
        const got = (output as { manifest: Manifest }).manifest;
        expect(got.serial).toBe(7);
        expect(got.versions[0]!.files.map((file) => file.chunkIndex)).toEqual(expectedIndexes(trusted));
      }),
      { numRuns: 300 },
    );
  });
});
