/**
 * Property: a manifest that cannot be decoded, canonicalised or validated is reported as a bad manifest
 * (MANIFEST_INVALID or SIGNATURE_INVALID), never as a network code: tampering must not look like an
 * outage (an outage is retried, and mirrors fail over). Hostile fragments (lone UTF-16 surrogates, odd
 * numbers, deep nesting, huge strings, bytes that are not UTF-8) are spliced anywhere into a valid signed
 * manifest, or an unsigned one, and served through the fetchManifest actor the updater runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import type { FetchManifestInput, FetchManifestOutput } from '../machines/types.js';
import { createFetchManifest } from '../src/core/actors/fetchManifest.js';
import { initialTrust } from '../src/core/trust/acceptManifest.js';
import { canonicalJson } from '../src/core/trust/canonical.js';
import { signEnvelope } from '../src/publish/sign.js';
import { newKey, T0 } from './helpers/signedRepository.js';

const MAX_BYTES = 1024 * 1024;
const key = newKey();
const manifest = {
  schemaVersion: 1,
  modelId: 'asr',
  serial: 7,
  expires: new Date(T0 + 86_400_000).toISOString(),
  versions: [
    {
      version: '1.1.0',
      channel: 'stable',
      requires: { app: '>=2' },
      notes: 'faster',
      rollout: 0.5,
      files: [
        { path: 'model.bin', size: 8192, sha256: 'b'.repeat(64), url: '1.1.0/model.bin' },
        { path: 'vocab/tokens.txt', size: 12, sha256: 'c'.repeat(64), url: '1.1.0/vocab/tokens.txt' },
      ],
    },
  ],
};
const envelope = signEnvelope(manifest, [key.privateKey]);
const BAD_MANIFEST = ['MANIFEST_INVALID', 'SIGNATURE_INVALID'];
/** A placeholder value no manifest holds, and its JSON text. */
const MARK = '\u0000hostile\u0000';
const MARK_JSON = JSON.stringify(MARK);

const loneSurrogate = fc.constantFrom('\\ud800', '\\udbff', '\\udc00', '\\udfff', '\\ud800\\ud800', '\\udc00\\ud800', 'a\\ud83d', '\\ude00z');
const hostileFragment: fc.Arbitrary<string> = fc.oneof(
  // A string holding a lone surrogate (as a JSON escape), as a value or as a key.
  fc.tuple(fc.string({ maxLength: 8 }), loneSurrogate, fc.string({ maxLength: 8 })).map(([a, s, b]) => `${JSON.stringify(a).slice(0, -1)}${s}${JSON.stringify(b).slice(1)}`),
  fc.tuple(loneSurrogate, fc.constantFrom('1', '"x"', 'null')).map(([s, v]) => `{"${s}":${v}}`),
  // Numbers that are legal JSON but odd, or out of range, or not JSON at all.
  fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '-0.0', '0e0', '9007199254740993', '123456789012345678901234567890', '0.1e1', '1E+2', '5e-324', '1.7976931348623157e308'),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '0x10', '01', '+1', '.5', '1.', '1e', '--1'),
  fc.tuple(fc.integer({ min: 1, max: 400 }), fc.boolean()).map(([digits, negative]) => `${negative ? '-' : ''}9${'9'.repeat(digits)}`),
  // Deep nesting, from just past the limit to far beyond it.
  fc.tuple(fc.integer({ min: 30, max: 100_000 }), fc.constantFrom('array', 'object')).map(([depth, kind]) =>
    kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  ),
  // Huge strings, near and past the size cap.
  fc.tuple(fc.integer({ min: 60_000, max: MAX_BYTES + 10 }), fc.constantFrom('x', '\\u00e9', 'é')).map(([length, unit]) => `"${unit.repeat(Math.ceil(length / unit.length))}"`),
);

/** Where a fragment goes: the path of a value to replace inside the document (or the whole document). */
const target = fc.array(fc.nat(), { maxLength: 7 });

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The document with the value at the path chosen by `choices` replaced by MARK's placeholder. */
function markAt(value: Json, choices: number[]): Json {
  if (choices.length === 0 || value === null || typeof value !== 'object') return MARK;
  const [choice, ...rest] = choices;
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  if (keys.length === 0) return MARK;
  const pick = keys[choice! % keys.length]!;
  const copy: any = Array.isArray(value) ? [...value] : { ...value };
  copy[pick] = markAt(copy[pick], rest);
  return copy;
}

/** The value at the path chosen by `choices` (as markAt walks it). */
function valueAt(value: Json, choices: number[]): Json {
  if (choices.length === 0 || value === null || typeof value !== 'object') return value;
  const [choice, ...rest] = choices;
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  if (keys.length === 0) return value;
  return valueAt((value as any)[keys[choice! % keys.length]!], rest);
}

/** Whether the JSON text `fragment` denotes the same value as `value` once canonicalised. */
function sameValue(value: Json, fragment: string): boolean {
  try {
    return canonicalJson(JSON.parse(fragment)) === canonicalJson(value);
  } catch {
    return false;
  }
}

/** The served bytes: the document as text with the hostile fragment spliced in raw. */
function served(document: Json, choices: number[], fragment: string): Uint8Array {
  return Buffer.from(JSON.stringify(markAt(document, choices)).replace(MARK_JSON, () => fragment), 'utf8');
}

/** The bytes of a lone surrogate encoded as if it were UTF-8 (CESU-8), which no UTF-8 decoder accepts. */
function withRawSurrogate(document: Json, choices: number[]): Uint8Array {
  const text = JSON.stringify(markAt(document, choices));
  const [before, after] = text.split(MARK_JSON);
  return Buffer.concat([Buffer.from(`${before}"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(`"${after ?? ''}`)]);
}

async function check(bytes: Uint8Array, signed: boolean): Promise<FetchManifestOutput> {
  const logic = createFetchManifest({
    manifestUrl: 'https://updates.example/manifest.json',
    maxBytes: MAX_BYTES,
    timeoutMs: 30_000,
    allowUnsigned: !signed,
    fetch: async () => new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { 'content-type': 'application/json' } }),
  });
  const trust = signed ? initialTrust([key.publicKey], 1) : initialTrust([], 1);
  // Unsigned, no serial was accepted before: a hostile serial of 0 is still a valid manifest, not a rollback.
  const input: FetchManifestInput = { etag: null, startedAt: T0, trust: { ...trust, serial: signed ? 3 : null }, held: null };
  return toPromise(createActor(logic, { input }).start());
}

/** Runs the check; a refusal must carry a bad-manifest code. Returns the code, or null when accepted. */
async function outcome(bytes: Uint8Array, signed: boolean): Promise<string | null> {
  try {
    await check(bytes, signed);
    return null;
  } catch (error) {
    const code = (error as { code?: string }).code;
    expect(BAD_MANIFEST, `${String(error)}`).toContain(code);
    return code!;
  }
}

describe('hostile manifests are bad manifests, never outages', () => {
  it('the untouched manifests are accepted (the property is not vacuous)', async () => {
    expect(await outcome(Buffer.from(JSON.stringify(envelope)), true)).toBeNull();
    expect(await outcome(Buffer.from(JSON.stringify(manifest)), false)).toBeNull();
  });

  it('a lone surrogate in the signed part is MANIFEST_INVALID, not NETWORK_UNAVAILABLE', async () => {
    const bytes = served(envelope as unknown as Json, [0, 4, 0, 3], '"\\ud800"'); // signed.versions[0].notes
    expect(new TextDecoder().decode(bytes)).toContain('"notes":"\\ud800"');
    expect(await outcome(bytes, true)).toBe('MANIFEST_INVALID');
    expect(await outcome(served(manifest as unknown as Json, [4, 0, 3], '"\\ud800"'), false)).toBe('MANIFEST_INVALID');
  });

  it('any hostile fragment anywhere, signed or not, ends as MANIFEST_INVALID or SIGNATURE_INVALID', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), target, hostileFragment, async (signed, choices, fragment) => {
        const document = (signed ? envelope : manifest) as unknown as Json;
        const code = await outcome(served(document, choices, fragment), signed);
        // Signed, nothing spliced into the document survives the signature check, unless it spells the
        // very value it replaced (`0.1e1` for 1): the canonical bytes, and so the document, are the same.
        if (signed && !sameValue(valueAt(document, choices), fragment)) expect(code).not.toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('a lone surrogate in raw bytes (not UTF-8) anywhere is MANIFEST_INVALID', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), target, async (signed, choices) => {
        const document = (signed ? envelope : manifest) as unknown as Json;
        expect(await outcome(withRawSurrogate(document, choices), signed)).toBe('MANIFEST_INVALID');
      }),
      { numRuns: 100 },
    );
  });
});
