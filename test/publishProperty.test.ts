/**
 * Property: whatever sequence of publishes a folder goes through (versions with and without chunk
 * indexes, files shared between versions, rollout changes, re-signs), the manifest stays one a 0.2.0
 * client parses, and manifest.chunks.json lists, signed, exactly the indexes of the listed files that
 * were published with one, each naming an index file that is there with its size and SHA-256.
 * Real files in a temp folder, through the publish API.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../machines/types.js';
import { parseEnvelope, type SignedEnvelope } from '../src/core/trust/envelope.js';
import { validSigners } from '../src/core/trust/verifySignatures.js';
import { generateKeyPair, parsePrivateKeyText } from '../src/publish/keys.js';
import { publish } from '../src/publish/publish.js';
import { parseManifestAsV020 } from './golden/v0.2.0/manifestSchema.js';
import { readChunkIndexEntries } from './helpers/publishedSite.js';

const pair = generateKeyPair();
const key = parsePrivateKeyText(pair.privateKeyPem, 'test key');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A few contents, so versions share files now and then. */
const CONTENTS = Array.from({ length: 4 }, (_, i) => randomBytes(2000 + i * 700));

type Step =
  | { kind: 'version'; files: number[]; chunkIndex: boolean }
  | { kind: 'rollout'; pick: number; rollout: number }
  | { kind: 'resign' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('version' as const), files: fc.uniqueArray(fc.nat({ max: CONTENTS.length - 1 }), { minLength: 1, maxLength: 3 }), chunkIndex: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('rollout' as const), pick: fc.nat(), rollout: fc.double({ min: 0, max: 1, noNaN: true }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'resign' as const }), weight: 1 },
);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-updater-publish-prop-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('publish, over any sequence of steps', () => {
  it('keeps a manifest 0.2.0 parses, and lists exactly the indexes of the listed files published with one', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        const out = path.join(tmp, `site-${run++}`);
        const indexed = new Set<string>(); // contents published with an index at least once
        const versions: string[] = [];
        for (const [i, next] of steps.entries()) {
          if (next.kind === 'version') {
            const version = `1.${versions.length}.0`;
            const input = path.join(out, '..', `in-${run}-${i}`);
            await mkdir(input, { recursive: true });
            for (const [n, content] of next.files.entries()) await writeFile(path.join(input, `file-${n}.bin`), CONTENTS[content]!);
            await publish({ out, version, inputs: [input], keys: [key], chunkIndex: next.chunkIndex });
            versions.push(version);
            if (next.chunkIndex) for (const content of next.files) indexed.add(sha256(CONTENTS[content]!));
          } else if (next.kind === 'rollout') {
            if (versions.length === 0) continue;
            await publish({ out, version: versions[next.pick % versions.length]!, inputs: [], keys: [key], rollout: next.rollout });
          } else {
            if (versions.length === 0) continue;
            await publish({ out, inputs: [], keys: [key] });
          }
        }
        if (versions.length === 0) return;

        const manifest = parseEnvelope(JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')), 'manifest').signed as unknown as Manifest;
        expect(() => parseManifestAsV020(manifest)).not.toThrow();
        const listed = new Set(manifest.versions.flatMap((entry) => entry.files.map((file) => file.sha256)));
        const entries = await readChunkIndexEntries(out);
        expect(new Set(entries.map((entry) => entry.sha256))).toEqual(new Set([...indexed].filter((sha) => listed.has(sha))));
        for (const entry of entries) {
          const bytes = await readFile(path.join(out, entry.chunkIndex.url));
          expect({ size: bytes.length, sha256: sha256(bytes) }).toEqual({ size: entry.chunkIndex.size, sha256: entry.chunkIndex.sha256 });
        }
        if (entries.length > 0) {
          const document = JSON.parse(await readFile(path.join(out, 'manifest.chunks.json'), 'utf8')) as SignedEnvelope;
          expect(await validSigners(document, [pair.publicKey])).toEqual(new Set([pair.publicKey]));
        }
      }),
      { numRuns: 25 },
    );
  });
});
