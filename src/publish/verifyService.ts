/**
 * Checks a deployed update service the way a client sees it: the manifest through the client's own
 * manifest code (createFetchManifest: size cap, strict JSON, schema, signatures, expiry), then every file
 * through the client's Transport: its size, a Range request, a strong ETag that If-Range honours, and
 * (with `full`) its bytes' SHA-256; then the chunk-index document and the indexes clients would use.
 */
import { createHash } from 'node:crypto';
import { createActor, toPromise } from 'xstate';
import type { ManifestFile, ManifestVersion, TrustState } from '../../machines/types.js';
import { createFetchManifest, fetchChunkIndexDocument, type AcceptedManifest, type FetchManifestOptions } from '../core/actors/fetchManifest.js';
import { DELTA_MIN_FILE_BYTES, wantsChunkIndex } from '../core/delta/deltaDownload.js';
import { chunkIndexDocumentUrl, withChunkIndexes } from '../core/manifest/chunkIndexDocument.js';
import { toErrorData, UpdateError } from '../core/errors.js';
import type { Transport, TransportResponse } from '../core/ports/transport.js';
import { initialTrust } from '../core/trust/acceptManifest.js';
import { createNodeTransport } from '../node/nodeTransport.js';

const DAY = 86_400_000;
/** A manifest expiring sooner than this is flagged: re-sign it (`publish --key`) before clients refuse it. */
export const EXPIRY_WARNING_MS = 7 * DAY;
const MAX_REDIRECTS = 5;

export interface VerifyServiceOptions {
  manifestUrl: string;
  /** Base64 raw Ed25519 public keys the clients trust; none: the manifest may be unsigned. */
  trustedKeys?: string[];
  threshold?: number;
  /** Download every file and check its SHA-256 too. */
  full?: boolean;
  now?: () => number;
  transport?: Transport;
  timeoutMs?: number;
}

export interface FileReport {
  version: string;
  path: string;
  url: string;
  /** The size the manifest gives. */
  size: number;
  /** The status of the ranged request (0 when none was answered). */
  status: number;
  /** The range request was answered 206 with the right Content-Range, and If-Range with the ETag too. */
  range: boolean;
  etag: string | null;
  /** With `full`: the SHA-256 of the bytes served. */
  sha256?: string;
  problems: string[];
}

export interface ServiceReport {
  ok: boolean;
  manifest: {
    url: string;
    ok: boolean;
    signed: boolean;
    serial: number | null;
    expires: string | null;
    expiresInDays: number | null;
    etag: string | null;
    versions: string[];
    pulled: string[];
    problems: string[];
    warnings: string[];
  };
  files: FileReport[];
  /** The chunk-index document beside the manifest (manifest.chunks.json), and the indexes clients would use. */
  chunkIndexes: ChunkIndexReport;
}

export interface ChunkIndexReport {
  url: string | null;
  /** Nothing in it stops an update (a missing document only makes updates download whole: a warning). */
  ok: boolean;
  /** Files of the manifest it lists an index for. */
  files: number;
  problems: string[];
  warnings: string[];
}

/**
 * @example
 * const report = await verifyService({ manifestUrl: 'https://models.example.com/asr/manifest.json', trustedKeys: [publicKey], full: true })
 * if (!report.ok) console.error(report.files.filter((file) => file.problems.length))
 */
export async function verifyService(options: VerifyServiceOptions): Promise<ServiceReport> {
  const now = (options.now ?? Date.now)();
  const keys = options.trustedKeys ?? [];
  const manifest: ServiceReport['manifest'] = {
    url: options.manifestUrl, ok: false, signed: false, serial: null, expires: null, expiresInDays: null, etag: null, versions: [], pulled: [], problems: [], warnings: [],
  };
  const trust: TrustState = { ...initialTrust(keys, options.threshold ?? 1) };
  const fetchOptions = { manifestUrl: options.manifestUrl, maxBytes: 16 * 1024 * 1024, timeoutMs: options.timeoutMs ?? 30_000, allowUnsigned: keys.length === 0 };
  const fetchManifest = createFetchManifest(fetchOptions);
  const chunkIndexes: ChunkIndexReport = { url: null, ok: true, files: 0, problems: [], warnings: [] };
  let output;
  try {
    output = await toPromise(createActor(fetchManifest, { input: { etag: null, startedAt: now, trust, held: null } }).start());
  } catch (error) {
    const data = toErrorData(error);
    manifest.problems.push(`${data.code}: ${data.message}`);
    return { ok: false, manifest, files: [], chunkIndexes };
  }
  if (output.notModified) throw new UpdateError('UNKNOWN', 'The service answered 304 to a request without a validator.');
  const body = output.manifest;
  Object.assign(manifest, {
    ok: true,
    signed: !output.unsigned,
    serial: body.serial ?? null,
    expires: body.expires ?? null,
    etag: output.etag,
    versions: body.versions.map((entry) => entry.version),
    pulled: body.versions.filter((entry) => entry.pulled).map((entry) => entry.version),
  });
  if (keys.length === 0) manifest.warnings.push('no --trusted-key given: the signature was not checked');
  if (body.expires) {
    const left = Date.parse(body.expires) - now;
    manifest.expiresInDays = Math.floor((left / DAY) * 10) / 10;
    if (left < EXPIRY_WARNING_MS) manifest.warnings.push(`expires in ${manifest.expiresInDays} days (${body.expires}): re-sign it with \`model-updater publish --out <site> --key <key>\` and upload the manifest`);
  }
  if (output.etag === null) manifest.warnings.push('no ETag on the manifest: every check downloads it whole (serve it with an ETag so checks cost a 304)');
  const transport = options.transport ?? createNodeTransport();
  const files: FileReport[] = [];
  for (const entry of body.versions) {
    for (const file of entry.files) files.push(await checkFile(transport, new URL(file.url, output.url), entry, file, options.full ?? false));
  }
  await checkChunkIndexes(chunkIndexes, output, fetchOptions, transport);
  const ok = manifest.ok && files.every((file) => file.problems.length === 0) && chunkIndexes.ok;
  return { ok, manifest, files, chunkIndexes };
}

/**
 * The chunk-index document as a client reads it (signature, type, model), then the index of every file
 * a differential download would use one for: a missing one only costs whole downloads, a wrong one
 * fails the update (INTEGRITY_MISMATCH).
 */
async function checkChunkIndexes(report: ChunkIndexReport, accepted: AcceptedManifest, options: FetchManifestOptions, transport: Transport): Promise<void> {
  report.url = chunkIndexDocumentUrl(accepted.url);
  const controller = new AbortController();
  let entries;
  try {
    entries = await fetchChunkIndexDocument(accepted, options, controller.signal);
  } catch (error) {
    const data = toErrorData(error);
    if (data.code === 'SERVICE_REJECTED' && /answered (404|410)/.test(data.message)) {
      report.warnings.push('none published: clients download changed files whole (`model-updater publish` writes it unless --no-chunk-index)');
    } else {
      report.ok = false;
      report.problems.push(`${data.code}: ${data.message}`);
    }
    return;
  } finally {
    controller.abort();
  }
  const manifest = withChunkIndexes(accepted.manifest, entries);
  const files = manifest.versions.flatMap((entry) => entry.files.map((file) => ({ version: entry.version, file })));
  report.files = files.filter(({ file }) => file.chunkIndex).length;
  const unindexed = files.filter(({ file }) => wantsChunkIndex(file)).map(({ version, file }) => `${version}/${file.path}`);
  if (unindexed.length) report.warnings.push(`no chunk index for ${unindexed.join(', ')}: these download whole`);
  for (const { version, file } of files) {
    if (!file.chunkIndex || file.size < DELTA_MIN_FILE_BYTES) continue;
    const url = new URL(file.chunkIndex.url, accepted.url);
    const where = `the chunk index of ${version}/${file.path} (${url.href})`;
    try {
      const { response } = await get(transport, url, {}, new AbortController().signal);
      const hash = createHash('sha256');
      let bytes = 0;
      await readAll(response, (chunk) => {
        bytes += chunk.byteLength;
        hash.update(chunk);
      });
      if (response.status === 404 || response.status === 410) report.warnings.push(`${where} answered ${response.status}: the file downloads whole`);
      else if (response.status !== 200) report.problems.push(`${where} answered ${response.status}`);
      else if (bytes !== file.chunkIndex.size || hash.digest('hex') !== file.chunkIndex.sha256) {
        report.problems.push(`${where} is not the one the signed document names (${bytes} bytes, ${file.chunkIndex.size} expected, or another SHA-256): updates to ${version} fail with INTEGRITY_MISMATCH; upload chunks/ again`);
      }
    } catch (error) {
      report.problems.push(`${where}: request failed: ${(error as Error).message ?? String(error)}`);
    }
  }
  report.ok = report.problems.length === 0;
}

/** A GET through the client's transport, following redirects as downloads do. */
async function get(transport: Transport, url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<{ response: TransportResponse; url: URL }> {
  for (let redirects = 0; ; redirects++) {
    const response = await transport.get({ url, headers, signal });
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.status) || location === undefined || redirects >= MAX_REDIRECTS) return { response, url };
    response.close();
    url = new URL(location, url);
  }
}

/** Reads a 2xx body; any other answer is dropped unread. */
async function readAll(response: TransportResponse, onBytes: (bytes: Uint8Array) => void): Promise<void> {
  if (response.status < 200 || response.status > 299) return response.close();
  await response.receive({ write: (bytes) => (onBytes(bytes), true) });
}

async function checkFile(transport: Transport, url: URL, entry: ManifestVersion, file: ManifestFile, full: boolean): Promise<FileReport> {
  const report: FileReport = { version: entry.version, path: file.path, url: url.href, size: file.size, status: 0, range: false, etag: null, problems: [] };
  const controller = new AbortController();
  try {
    // The last byte: answers the size (Content-Range) and whether ranges work, for one byte of transfer.
    const first = file.size > 0 ? file.size - 1 : 0;
    const ranged = await get(transport, url, file.size > 0 ? { range: `bytes=${first}-` } : {}, controller.signal);
    report.status = ranged.response.status;
    report.etag = ranged.response.headers.etag ?? null;
    await readAll(ranged.response, () => undefined);
    if (file.size === 0) {
      if (ranged.response.status !== 200) report.problems.push(`answered ${ranged.response.status}, not 200`);
    } else if (ranged.response.status === 206) {
      const contentRange = ranged.response.headers['content-range'] ?? '';
      const total = /\/(\d+)$/.exec(contentRange)?.[1];
      if (total === undefined) report.problems.push(`206 without a complete Content-Range ("${contentRange}")`);
      else if (Number(total) !== file.size) report.problems.push(`the server has ${total} bytes, the manifest says ${file.size}: upload the file again (or the manifest is for other files)`);
      else report.range = true;
    } else if (ranged.response.status === 200) {
      report.problems.push('a Range request was answered 200 (whole file): interrupted downloads cannot resume; serve byte ranges');
      const length = ranged.response.headers['content-length'];
      if (length !== undefined && Number(length) !== file.size) report.problems.push(`Content-Length ${length}, the manifest says ${file.size}`);
    } else if (ranged.response.status === 416) {
      report.problems.push(`answered 416 to a range inside the ${file.size} bytes the manifest gives: the file on the server is shorter; upload it again`);
    } else {
      report.problems.push(`answered ${ranged.response.status}: the file is missing or refused (upload files before the manifest)`);
    }
    if (report.status >= 200 && report.status < 300) {
      if (report.etag === null) report.problems.push('no ETag: a resumed download cannot prove the file did not change (If-Range)');
      else if (report.etag.startsWith('W/')) report.problems.push(`weak ETag ${report.etag}: If-Range needs a strong one, so downloads restart from zero`);
    }
    // A resume as the client sends it: the range with If-Range on the ETag must stay partial.
    if (report.range && report.etag && !report.etag.startsWith('W/')) {
      const resumed = await get(transport, url, { range: `bytes=${first}-`, 'if-range': report.etag }, controller.signal);
      await readAll(resumed.response, () => undefined);
      if (resumed.response.status !== 206) {
        report.range = false;
        report.problems.push(`a Range with If-Range: ${report.etag} was answered ${resumed.response.status}, not 206: downloads restart from zero`);
      }
    }
    if (full) {
      const whole = await get(transport, url, {}, controller.signal);
      const hash = createHash('sha256');
      let bytes = 0;
      await readAll(whole.response, (chunk) => {
        bytes += chunk.byteLength;
        hash.update(chunk);
      });
      report.sha256 = hash.digest('hex');
      if (whole.response.status !== 200) report.problems.push(`the full GET was answered ${whole.response.status}`);
      else if (bytes !== file.size) report.problems.push(`served ${bytes} bytes, the manifest says ${file.size}`);
      else if (report.sha256 !== file.sha256) report.problems.push(`SHA-256 ${report.sha256} differs from the manifest's ${file.sha256}: clients will refuse it (INTEGRITY_MISMATCH)`);
    }
  } catch (error) {
    report.problems.push(`request failed: ${(error as Error).message ?? String(error)}`);
  } finally {
    controller.abort();
  }
  return report;
}
