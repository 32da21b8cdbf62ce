/**
 * The caller's request headers for a model file, checked the same on every platform: a name must be
 * an HTTP token, a value may not carry a line break (header injection), and the headers the download
 * writes itself (framing, ranges) are not the caller's to set.
 */
import { UpdateError } from '../errors.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the transport writes itself (the download drops the range headers it writes, downloadFile.ts). */
const RESERVED = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'accept-encoding', 'te', 'upgrade']);
/** Dropped when a redirect leaves the origin they were meant for. */
const CREDENTIALS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Lowercase names, reserved ones dropped; INVALID_ARGUMENT for a malformed one.
 * @example
 * normalizeHeaders({ Authorization: 'Bearer x' }) // { authorization: 'Bearer x' }
 */
export function normalizeHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!TOKEN.test(name)) throw new UpdateError('INVALID_ARGUMENT', `Header ${JSON.stringify(name)} is not a valid HTTP header name.`);
    if (typeof value !== 'string' || !FIELD_VALUE.test(value)) {
      throw new UpdateError('INVALID_ARGUMENT', `Header ${JSON.stringify(name)} has an invalid value (a line break or control character); it is not sent.`);
    }
    const key = name.toLowerCase();
    if (!RESERVED.has(key)) out[key] = value;
  }
  return out;
}

export function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  for (const name of CREDENTIALS) delete out[name];
  return out;
}

/** `user:password@` in the URL as Basic auth (UTF-8, as browsers send it), unless the caller set one. */
export function basicAuth(url: URL): string | undefined {
  if (url.username === '') return undefined;
  const bytes = new TextEncoder().encode(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

/**
 * An absolute http: or https: URL; `base` set: a redirect's Location, resolved against it.
 * @example
 * parseUrl('https://models.example.com/1.0.0/model.bin')
 */
export function parseUrl(value: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `"${value}" is not an absolute URL; pass an http: or https: URL.` : `${base.href} redirected to "${value}", which is not a URL.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UpdateError(
      base === undefined ? 'INVALID_ARGUMENT' : 'DOWNLOAD_FAILED',
      base === undefined ? `${url.href} is not an http: or https: URL.` : `${base.href} redirected to ${url.href}, which is not http: or https:.`,
    );
  }
  return url;
}
