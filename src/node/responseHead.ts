/**
 * A strict reader for the head of an HTTP/1.1 response, for the direct download path
 * (directHttpExchange.ts). Strict on purpose: it accepts only the plain form of a head and answers
 * undefined for anything else (bare LF, folded lines, odd characters, a repeated field node:http would
 * collapse). The download then repeats the request over node:http, whose parser has the last word on
 * everything unusual, so this reader never has to decide a hard case.
 */

export interface ResponseHead {
  status: number;
  statusText: string;
  /** Lowercase names; a repeated field's values joined with ', ', as node:http does. */
  headers: Record<string, string>;
}

/** Largest head accepted (node:http's default is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
/** Fields node:http keeps only the first of (or joins differently): a repeat is left to node:http. */
const SINGLE_FIELDS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'cookie',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** Index just past the blank line that ends the head, or -1 while it has not arrived. */
export function headEnd(bytes: Uint8Array): number {
  const index = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf('\r\n\r\n');
  return index < 0 ? -1 : index + 4;
}

/**
 * Parses a head (status line to blank line, CRLFs included) read as latin1. Undefined: not plain enough.
 *
 * @example
 * parseResponseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n')
 * // { status: 206, statusText: 'Partial Content', headers: { 'content-length': '10' } }
 */
export function parseResponseHead(text: string): ResponseHead | undefined {
  if (!text.endsWith('\r\n\r\n')) return undefined;
  const lines = text.slice(0, -4).split('\r\n');
  // A CR or LF left inside a line is a bare one: not plain.
  if (lines.some((line) => line.includes('\r') || line.includes('\n'))) return undefined;
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (status === null) return undefined;
  // No prototype, so no field name reaches one; and a field named __proto__, which node:http drops
  // (its headers object has one), is not plain: node:http reads that head, as it always has.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of lines.slice(1)) {
    const field = FIELD_LINE.exec(line);
    if (field === null) return undefined;
    const name = field[1]!.toLowerCase();
    if (name === '__proto__') return undefined;
    const value = field[2]!;
    const previous = headers[name];
    if (previous === undefined) headers[name] = value;
    else if (SINGLE_FIELDS.has(name)) return undefined;
    else headers[name] = `${previous}, ${value}`;
  }
  return { status: Number(status[1]), statusText: status[2] ?? '', headers };
}
