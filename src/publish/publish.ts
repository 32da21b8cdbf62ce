/**
 * Adds a version to a static update-service folder: copies the files under `<out>/<version>/`, writes
 * their chunk indexes under `chunks/` and lists them in manifest.chunks.json, and rewrites manifest.json,
 * each atomically. The folder can be served by any static HTTP server or CDN.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, posix, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import semver from 'semver';
import type { ChunkIndexRef, Manifest, ManifestFile, ManifestVersion, VersionRequirements } from '../../machines/types.js';
import { encodeChunkIndex, type ChunkIndex } from '../core/chunks/chunkIndex.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from '../core/chunks/contentChunker.js';
import { indexFileOnDisk } from './chunkIndexFile.js';
import { UpdateError } from '../core/errors.js';
import { writeFileAtomic } from '../node/durableWrite.js';
import { parseManifest } from '../core/manifest/schema.js';
import {
  CHUNK_INDEX_DOCUMENT_FILE,
  CHUNK_INDEX_DOCUMENT_TYPE,
  CHUNK_INDEX_DOCUMENT_VERSION,
  parseChunkIndexDocument,
  type ChunkIndexDocument,
  type ChunkIndexEntry,
} from '../core/manifest/chunkIndexDocument.js';
import type { KeyObject } from 'node:crypto';
import { looksSigned, parseEnvelope } from '../core/trust/envelope.js';
import { signEnvelope } from './sign.js';
import { rawPublicKey } from './keys.js';
import { keySetId, keySetName } from '../core/trust/keySet.js';
import { parseExpires } from '../core/trust/expires.js';
import { parseStrictJson } from '../core/trust/strictJson.js';

export interface PublishOptions {
  out: string;
  /** The version to add; omit it (with no inputs) to only re-sign: a new serial and expiry, same versions. */
  version?: string;
  channel?: string;
  requiresApp?: string;
  /** What the host must be able to run (`runtime`, `minMemoryBytes`, `accelerators`; `app` as requiresApp). */
  requires?: VersionRequirements;
  notes?: string;
  /** Publisher-defined JSON handed to the hooks (`model.metadata`), signed with the manifest; at most 64 KiB. */
  metadata?: Record<string, unknown>;
  modelId?: string;
  /** Files, or folders whose relative layout is kept. */
  inputs: string[];
  now?: () => number;
  /** Ed25519 private keys to sign the manifest with; without them it is written unsigned. */
  keys?: KeyObject[];
  /** When the signed manifest expires: an ISO date or a duration from now like `30d`, `12h`. Default 30d when signing. */
  expires?: string;
  /**
   * Rotates to this key set (base64 raw public keys and threshold); sign with the old and the new keys.
   * The manifest names the rotation (`trust.version`, one more than the last) and the set it rotates
   * from (`trust.previous`), so clients take rotations in order and reset their serial floor.
   */
  rotateTo?: { keys: string[]; threshold: number };
  /**
   * The key set clients trust now, for a first rotation: default the manifest's current `trust`, else the
   * signing keys that are not in the new set, threshold 1.
   */
  rotateFrom?: { keys: string[]; threshold: number };
  /**
   * Staged rollout: the fraction of installs (0 to 1) offered this version. With inputs it is set on the new
   * version; without inputs, on the already published `version`, changing only that field.
   */
  rollout?: number;
  /** Withdraws this published version: it stays listed with `pulled: true`, is never offered again, and
   * installs running it roll back (VERSION_PULLED). Give no `version` and no inputs with it. */
  pull?: string;
  /**
   * Writes a chunk index of every file under `chunks/` and lists it in manifest.chunks.json, so clients fetch
   * only the chunks they do not hold (differential updates). Default true; sizes default
   * DEFAULT_CHUNKER_PARAMS. False: no indexes (clients download changed files whole).
   */
  chunkIndex?: boolean | ChunkerParams;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

/** Each input file with the path it gets inside the version. */
async function collect(inputs: string[]): Promise<Array<{ source: string; path: string }>> {
  const files: Array<{ source: string; path: string }> = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => {
      throw new UpdateError('INVALID_ARGUMENT', `Cannot publish "${input}": no such file or folder.`);
    });
    if (info.isFile()) {
      files.push({ source: input, path: basename(input) });
      continue;
    }
    const entries = await readdir(input, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const source = join(entry.parentPath, entry.name);
      files.push({ source, path: relative(input, source).split(sep).join(posix.sep) });
    }
  }
  return files;
}

/** What a service folder publishes: its manifest, and the chunk indexes of its files. */
interface Service {
  /** Without chunk indexes in it: a client of 0.2.0 refuses a manifest whose files name one. */
  manifest: Manifest;
  /** From manifest.chunks.json, and from the files of a manifest written by 0.3.0, which named them itself. */
  chunkIndexes: ChunkIndexEntry[];
}

/** Reads the folder's own documents back: the content is re-signed when written, not trusted here. */
async function readService(out: string, modelId: string): Promise<Service> {
  const text = await readFile(join(out, 'manifest.json'), 'utf8').catch(() => null);
  if (text === null) return { manifest: { schemaVersion: 1, modelId, versions: [] }, chunkIndexes: [] };
  const source = `${join(out, 'manifest.json')}`;
  const document = parseStrictJson(text, source);
  const manifest = parseManifest(looksSigned(document) ? parseEnvelope(document, source).signed : document, source);
  const chunkIndexes = await readChunkIndexDocument(out, manifest.modelId);
  const versions = manifest.versions.map((entry) => ({
    ...entry,
    files: entry.files.map(({ chunkIndex, ...file }) => {
      if (chunkIndex) chunkIndexes.push({ sha256: file.sha256, size: file.size, chunkIndex });
      return file;
    }),
  }));
  return { manifest: { ...manifest, versions }, chunkIndexes };
}

async function readChunkIndexDocument(out: string, modelId: string): Promise<ChunkIndexEntry[]> {
  const path = join(out, CHUNK_INDEX_DOCUMENT_FILE);
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return [];
  let parsed: ChunkIndexDocument;
  try {
    const document = parseStrictJson(text, path);
    parsed = parseChunkIndexDocument(looksSigned(document) ? parseEnvelope(document, path).signed : document, path);
  } catch (error) {
    throw new UpdateError(
      'INVALID_ARGUMENT',
      `${path} cannot be read back (${(error as Error).message}). Nothing was published. Delete it and publish again: it is rewritten with the indexes of the versions published from then on (the others download whole).`,
      { cause: error },
    );
  }
  if (parsed.modelId !== modelId) {
    throw new UpdateError('INVALID_ARGUMENT', `${path} is for model "${parsed.modelId}", but manifest.json is for "${modelId}": one folder publishes one model. Remove the stray file, or publish into another folder.`);
  }
  return parsed.files;
}

/**
 * Writes the chunk-index document (the indexes of the files the manifest lists), then the manifest:
 * a client that sees the new manifest finds the indexes of its new files. Both are signed with the keys.
 */
async function writeService(out: string, { manifest, chunkIndexes }: Service, options: PublishOptions): Promise<void> {
  const { signed, text } = finish(manifest, options);
  const listed = new Map(signed.versions.flatMap((entry) => entry.files.map((file) => [file.sha256, file.size] as const)));
  const unique = new Map(chunkIndexes.filter((entry) => listed.get(entry.sha256) === entry.size).map((entry) => [entry.sha256, entry]));
  const path = join(out, CHUNK_INDEX_DOCUMENT_FILE);
  if (unique.size > 0 || (await stat(path).catch(() => null))) {
    const document: ChunkIndexDocument = { type: CHUNK_INDEX_DOCUMENT_TYPE, schemaVersion: CHUNK_INDEX_DOCUMENT_VERSION, modelId: signed.modelId, files: [...unique.values()] };
    const checked = parseChunkIndexDocument(document, 'the new chunk-index document');
    const signing = (options.keys?.length ?? 0) > 0;
    await writeFileAtomic(path, `${JSON.stringify(signing ? signEnvelope(checked, options.keys!) : checked, null, 2)}\n`);
  }
  await writeFileAtomic(join(out, 'manifest.json'), text);
}

/** The manifest as written: signed with the keys when there are some, with the next serial and an expiry. */
function finish(manifest: Manifest, options: PublishOptions): { signed: Manifest; text: string } {
  const signing = (options.keys?.length ?? 0) > 0;
  const { serial, expires: _expires, trust: _trust, versions, ...rest } = manifest;
  const signed: Manifest = { ...rest, versions };
  if (signing || serial !== undefined) signed.serial = (serial ?? 0) + 1;
  if (signing || options.expires !== undefined) signed.expires = parseExpires(options.expires ?? '30d', (options.now ?? Date.now)());
  const trust = options.rotateTo ? rotation(manifest, options, options.rotateTo) : manifest.trust;
  if (trust) signed.trust = trust;
  const checked = parseManifest(signed, 'the new manifest');
  const document = signing ? signEnvelope(checked, options.keys!) : checked;
  return { signed: checked, text: `${JSON.stringify(document, null, 2)}\n` };
}

/** The `trust` of a rotating manifest: the new set, chained to the one it rotates from. */
function rotation(manifest: Manifest, options: PublishOptions, to: { keys: string[]; threshold: number }): NonNullable<Manifest['trust']> {
  const current = manifest.trust;
  // Rotating again to the set already declared is no new rotation.
  if (current && keySetName(current.keys, current.threshold) === keySetName(to.keys, to.threshold)) return current;
  const newKeys = new Set(to.keys);
  const from = options.rotateFrom ?? current ?? { keys: (options.keys ?? []).map(rawPublicKey).filter((key) => !newKeys.has(key)), threshold: 1 };
  if (from.keys.length === 0) {
    throw new UpdateError('INVALID_ARGUMENT', 'Cannot tell which keys clients trust now: sign with the current key(s) too (--key), or name them with --rotate-from.');
  }
  return { keys: to.keys, threshold: to.threshold, version: (current?.version ?? 0) + 1, previous: keySetId(from.keys, from.threshold) };
}

/**
 * @example
 * await publish({ out: 'site', version: '1.1.0', inputs: ['model.onnx', 'vocab.txt'] })
 */
export async function publish(options: PublishOptions & { version: string }): Promise<ManifestVersion>;
export async function publish(options: PublishOptions): Promise<ManifestVersion | null>;
export async function publish(options: PublishOptions): Promise<ManifestVersion | null> {
  if (options.rollout !== undefined && !(Number.isFinite(options.rollout) && options.rollout >= 0 && options.rollout <= 1)) {
    throw new UpdateError('INVALID_ARGUMENT', `--rollout "${options.rollout}" is not a fraction: give a number from 0 to 1, like 0.25.`);
  }
  if (options.pull !== undefined) return changePublished(options, options.pull, () => ({ pulled: true }));
  if (options.version !== undefined && options.rollout !== undefined && options.inputs.length === 0) {
    return changePublished(options, options.version, () => ({ rollout: options.rollout! }));
  }
  if (options.version === undefined && options.inputs.length === 0) {
    await writeService(options.out, await readService(options.out, options.modelId ?? basename(options.out)), options);
    return null;
  }
  if (options.version === undefined || semver.valid(options.version) !== options.version) {
    throw new UpdateError('INVALID_ARGUMENT', `--version "${options.version}" is not a semver version like 1.2.0.`);
  }
  if (options.inputs.length === 0) throw new UpdateError('INVALID_ARGUMENT', 'Give at least one file or folder to publish.');
  await mkdir(options.out, { recursive: true });
  const { manifest, chunkIndexes } = await readService(options.out, options.modelId ?? basename(options.out));
  if (manifest.versions.some((entry) => entry.version === options.version)) {
    throw new UpdateError('INVALID_ARGUMENT', `Version ${options.version} is already published in ${options.out}; published versions are immutable, publish a new version number.`);
  }
  const files: ManifestFile[] = [];
  for (const { source, path } of await collect(options.inputs)) {
    const target = join(options.out, options.version, ...path.split('/'));
    await mkdir(join(target, '..'), { recursive: true });
    await copyFile(source, target);
    const { size } = await stat(target);
    const url = `${options.version}/${path.split('/').map(encodeURIComponent).join('/')}`;
    if (options.chunkIndex === false) {
      files.push({ path, size, sha256: await sha256File(target), url });
      continue;
    }
    const params = options.chunkIndex === true || options.chunkIndex === undefined ? DEFAULT_CHUNKER_PARAMS : options.chunkIndex;
    const { sha256, index } = await indexFileOnDisk(target, params);
    files.push({ path, size, sha256, url });
    chunkIndexes.push({ sha256, size, chunkIndex: await writeChunkIndex(options.out, index) });
  }
  const entry: ManifestVersion = {
    version: options.version,
    channel: options.channel ?? 'stable',
    ...(options.requiresApp || options.requires ? { requires: { ...options.requires, ...(options.requiresApp ? { app: options.requiresApp } : {}) } } : {}),
    ...(options.notes ? { notes: options.notes } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    publishedAt: new Date((options.now ?? Date.now)()).toISOString(),
    ...(options.rollout !== undefined ? { rollout: options.rollout } : {}),
    files,
  };
  await writeService(options.out, { manifest: { ...manifest, versions: [...manifest.versions, entry] }, chunkIndexes }, options);
  return entry;
}

/**
 * Writes an index under `chunks/`, named by its own SHA-256: versions sharing a file share its index,
 * and no payload path of a version can collide with it (a version folder is a semver name).
 */
async function writeChunkIndex(out: string, index: ChunkIndex): Promise<ChunkIndexRef> {
  const bytes = encodeChunkIndex(index);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await mkdir(join(out, 'chunks'), { recursive: true });
  const name = `${sha256}.mucx`;
  const path = join(out, 'chunks', name);
  if ((await stat(path).catch(() => null))?.size !== bytes.length) await writeFileAtomic(path, bytes);
  return { url: `chunks/${name}`, size: bytes.length, sha256 };
}

/**
 * Changes fields of a version already published (its rollout, or pulls it), leaving every other field and
 * every other version as they are; the manifest is re-signed (next serial) when keys are given.
 */
async function changePublished(options: PublishOptions, version: string, change: () => Partial<ManifestVersion>): Promise<ManifestVersion> {
  if (options.inputs.length > 0) throw new UpdateError('INVALID_ARGUMENT', `Changing published version ${version} takes no files: published versions are immutable.`);
  if (options.pull !== undefined && options.version !== undefined) throw new UpdateError('INVALID_ARGUMENT', '--pull takes the version to withdraw itself: give it without --version.');
  const { manifest, chunkIndexes } = await readService(options.out, options.modelId ?? basename(options.out));
  const index = manifest.versions.findIndex((entry) => entry.version === version);
  if (index === -1) {
    const listed = manifest.versions.map((entry) => entry.version).join(', ') || 'none';
    throw new UpdateError('INVALID_ARGUMENT', `Version ${version} is not published in ${options.out} (published: ${listed}); publish it first, with its files.`);
  }
  if ((options.keys?.length ?? 0) === 0 && (await isSignedOnDisk(options.out))) {
    throw new UpdateError('INVALID_ARGUMENT', `${join(options.out, 'manifest.json')} is signed: give the signing key(s) with --key, or clients would refuse the unsigned manifest.`);
  }
  const entry = { ...manifest.versions[index]!, ...change() };
  const versions = manifest.versions.map((old, i) => (i === index ? entry : old));
  await writeService(options.out, { manifest: { ...manifest, versions }, chunkIndexes }, options);
  return entry;
}

async function isSignedOnDisk(out: string): Promise<boolean> {
  const text = await readFile(join(out, 'manifest.json'), 'utf8').catch(() => null);
  return text !== null && looksSigned(parseStrictJson(text, join(out, 'manifest.json')));
}
