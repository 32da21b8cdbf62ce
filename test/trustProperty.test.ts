/**
 * Property: random mutations of a valid signed manifest (its bytes, its fields, its signatures) are never
 * accepted unless what is left is still a valid signature over a valid document. Every refusal is a
 * typed UpdateError, never a crash.
 */
import { createPrivateKey, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isUpdateError } from '../src/core/errors.js';
import { acceptManifest } from '../src/core/trust/acceptManifest.js';
import { canonicalJson } from '../src/core/trust/canonical.js';
import { keyIdOf, publicKeyObject } from '../src/publish/keys.js';
import { signEnvelope } from '../src/publish/sign.js';
import { parseStrictJson } from '../src/core/trust/strictJson.js';
import { newKey, T0 } from './helpers/signedRepository.js';

const key = newKey();
const signed = {
  schemaVersion: 1,
  modelId: 'asr',
  serial: 7,
  expires: new Date(T0 + 86_400_000).toISOString(),
  versions: [
    { version: '1.0.0', channel: 'stable', files: [{ path: 'model.bin', size: 4096, sha256: 'a'.repeat(64), url: '1.0.0/model.bin' }] },
    {
      version: '1.1.0',
      channel: 'stable',
      requires: { app: '>=2' },
      files: [
        { path: 'model.bin', size: 8192, sha256: 'b'.repeat(64), url: '1.1.0/model.bin' },
        { path: 'vocab/tokens.txt', size: 12, sha256: 'c'.repeat(64), url: '1.1.0/vocab/tokens.txt' },
      ],
    },
  ],
};
const original = signEnvelope(signed, [key.privateKey]);
const text = JSON.stringify(original, null, 2);
const policy = { trust: { keys: [key.publicKey], threshold: 1, serial: 3, anchor: 'x' }, allowUnsigned: false, now: T0, clockSkewMs: 0 };
const REFUSALS = ['MANIFEST_INVALID', 'SIGNATURE_INVALID', 'ROLLBACK_REJECTED', 'MANIFEST_EXPIRED'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Sets (or deletes, for undefined) the value at a path chosen by `choices` inside `value`. */
function mutateAt(value: Json, choices: number[], replacement: Json | undefined): Json {
  if (choices.length === 0 || value === null || typeof value !== 'object') return replacement === undefined ? null : replacement;
  const [choice, ...rest] = choices;
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  if (keys.length === 0) return replacement ?? value;
  const pick = keys[choice! % keys.length]!;
  const copy: any = Array.isArray(value) ? [...value] : { ...value };
  if (rest.length === 0 && replacement === undefined) {
    if (Array.isArray(copy)) copy.splice(pick as number, 1);
    else delete copy[pick];
  } else copy[pick] = mutateAt(copy[pick], rest, replacement);
  return copy;
}

const mutation = fc.oneof(
  // A byte of the served text replaced by any byte.
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(text.length - 1), byte: fc.integer({ min: 0, max: 255 }) }),
  // A field of the document set to any JSON value, or deleted.
  fc.record({ kind: fc.constant('field' as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), value: fc.option(fc.jsonValue() as fc.Arbitrary<Json>, { nil: undefined }) }),
  // The signatures: replaced by random ones, re-keyed, emptied or repeated.
  fc.record({
    kind: fc.constant('signature' as const),
    how: fc.constantFrom('random-sig', 'random-keyid', 'empty', 'repeat', 'other-key'),
    bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function apply(m: Mutation): Uint8Array {
  if (m.kind === 'byte') {
    const bytes = Buffer.from(text, 'utf8');
    bytes[m.at] = m.byte;
    return bytes;
  }
  const document: any = JSON.parse(text);
  if (m.kind === 'field') return Buffer.from(JSON.stringify(mutateAt(document, m.path, m.value)));
  const [first] = document.signatures;
  const other = newKey();
  document.signatures = {
    'random-sig': [{ ...first, sig: Buffer.from(m.bytes).toString('base64') }],
    'random-keyid': [{ ...first, keyid: Buffer.from(m.bytes).toString('hex').slice(0, 64) }],
    empty: [],
    repeat: [first, first, first],
    'other-key': [{ keyid: keyIdOf(other.publicKey), sig: first.sig }],
  }[m.how];
  return Buffer.from(JSON.stringify(document));
}

/** Independent of the code under test: does the document carry a valid signature by the key over its `signed`? */
function reallySigned(document: any): boolean {
  const data = Buffer.from(canonicalJson(document.signed));
  return document.signatures.some(
    (s: { keyid: string; sig: string }) => s.keyid === keyIdOf(key.publicKey) && verify(null, data, publicKeyObject(key.publicKey), Buffer.from(s.sig, 'base64')),
  );
}

describe('signed manifest property', () => {
  it('the unmutated manifest is accepted (the property is not vacuous)', async () => {
    const accepted = await acceptManifest(parseStrictJson(Buffer.from(text), 'm'), policy, 'm');
    expect(accepted.trust.serial).toBe(7);
  });

  it('a mutation is accepted only when it still is a valid signature over the same valid document', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const bytes = apply(m);
        let accepted;
        try {
          accepted = await acceptManifest(parseStrictJson(bytes, 'm'), policy, 'm');
        } catch (error) {
          expect(isUpdateError(error), String(error)).toBe(true);
          expect(REFUSALS).toContain((error as { code: string }).code);
          return;
        }
        const document = JSON.parse(Buffer.from(bytes).toString('utf8'));
        expect(reallySigned(document)).toBe(true);
        expect(canonicalJson(document.signed)).toBe(canonicalJson(original.signed));
        expect(canonicalJson(accepted.manifest)).toBe(canonicalJson(original.signed));
      }),
      { numRuns: 400 },
    );
  });
});

describe('canonical form, golden', () => {
  // Fixed bytes and a signature by a fixed key (Ed25519 is deterministic): a change of the canonicaliser
  // (canonicalize 5 -> 4 for Node 20) or of our use of it would invalidate every published signature.
  const seed = Buffer.alloc(32, 7);
  const goldenKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const golden = {
    schemaVersion: 1,
    modelId: 'asr',
    serial: 7,
    expires: '2027-01-02T00:00:00.000Z',
    versions: [{ version: '1.1.0', channel: 'stable', notes: 'é €😀 "q" \n', rollout: 0.25, files: [{ path: 'model.bin', size: 8192, sha256: 'b'.repeat(64), url: '1.1.0/model.bin' }] }],
  };

  it('gives the RFC 8785 bytes and the same signature as when the signatures were published', () => {
    expect(canonicalJson(golden)).toBe(
      `{"expires":"2027-01-02T00:00:00.000Z","modelId":"asr","schemaVersion":1,"serial":7,"versions":[{"channel":"stable","files":[{"path":"model.bin","sha256":"${'b'.repeat(64)}","size":8192,"url":"1.1.0/model.bin"}],"notes":"é €😀 \\"q\\" \\n","rollout":0.25,"version":"1.1.0"}]}`,
    );
    expect(signEnvelope(golden, [goldenKey]).signatures).toEqual([
      { keyid: 'fe812c12f3ab4ce6ac5db69ac352f906cb1b11ef43fb33e252ef7ff552263889', sig: '41Wxgtp8cnD0IvmoapyQmOY/VJ+Y0vIph0Wu8mEWTMzf2dxTTMKnMiCii/Vv9u9G+6VZJzKA785D7IoPIybZDg==' },
    ]);
    // RFC 8785's own number and key-order sample.
    expect(canonicalJson({ numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 1e-27], '\u20ac': 1, '\r': 2, '\ud83d\ude00': 3, ö: 4, '1': 5 })).toBe(
      '{"\\r":2,"1":5,"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"ö":4,"€":1,"😀":3}',
    );
  });

  it('refuses a lone surrogate as MANIFEST_INVALID: it has no canonical form', () => {
    expect(() => canonicalJson({ notes: '\ud800' })).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });
});
