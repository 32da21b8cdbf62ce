/**
 * JSON from an untrusted server, parsed so that hostile documents are a clear MANIFEST_INVALID and never a
 * crash or a surprise: invalid UTF-8, a byte-order mark, duplicate keys, `__proto__` / `constructor` /
 * `prototype` keys, nesting deeper than a limit, numbers beyond the safe integers and strings holding a lone
 * UTF-16 surrogate (`"\ud800"`: no Unicode text, so no canonical form to sign) are refused.
 *
 * A scanner checks the text first; the value itself is then built by JSON.parse, so the two agree.
 */
import { UpdateError } from '../errors.js';

export interface StrictJsonOptions {
  /** Deepest nesting of objects and arrays accepted. Default 32. */
  maxDepth?: number;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Parses JSON bytes (or text) strictly.
 * @example
 * parseStrictJson(new TextEncoder().encode('{"a":1,"a":2}'), 'the manifest') // throws MANIFEST_INVALID: duplicate key "a"
 */
export function parseStrictJson(input: Uint8Array | string, source: string, options: StrictJsonOptions = {}): unknown {
  const text = typeof input === 'string' ? input : decodeUtf8(input, source);
  if (text.charCodeAt(0) === 0xfeff) {
    throw invalid(source, 'starts with a byte-order mark (BOM); save it as UTF-8 without a BOM');
  }
  new Scanner(text, source, options.maxDepth ?? 32).document();
  return JSON.parse(text) as unknown;
}

function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw invalid(source, 'is not valid UTF-8');
  }
}

function invalid(source: string, what: string): UpdateError {
  return new UpdateError('MANIFEST_INVALID', `${source} ${what}. Fix the manifest on the update service (re-run \`model-updater publish\`); the active model is unchanged.`);
}

class Scanner {
  private at = 0;
  constructor(
    private readonly text: string,
    private readonly source: string,
    private readonly maxDepth: number,
  ) {}

  document(): void {
    this.value(0, '(root)');
    this.skipWhitespace();
    if (this.at !== this.text.length) this.fail(`has unexpected text at character ${this.at}`);
  }

  private fail(what: string): never {
    throw invalid(this.source, `is not valid JSON: it ${what}`);
  }

  private skipWhitespace(): void {
    WHITESPACE.lastIndex = this.at;
    WHITESPACE.exec(this.text);
    this.at = WHITESPACE.lastIndex;
  }

  private token(pattern: RegExp): string | null {
    pattern.lastIndex = this.at;
    const match = pattern.exec(this.text);
    if (match === null) return null;
    this.at = pattern.lastIndex;
    return match[0];
  }

  /** The string a JSON string token stands for, refused when it holds a lone surrogate. */
  private wellFormed(raw: string, at: number, path: string): string {
    const value = JSON.parse(raw) as string;
    if (LONE_SURROGATE.test(value)) this.fail(`has a string with a lone UTF-16 surrogate at character ${at} (in ${path}), which is not Unicode text`);
    return value;
  }

  private value(depth: number, path: string): void {
    this.skipWhitespace();
    const c = this.text[this.at];
    if (c === '{' || c === '[') {
      if (depth + 1 > this.maxDepth) this.fail(`nests deeper than ${this.maxDepth} levels at ${path}`);
      if (c === '{') this.object(depth + 1, path);
      else this.array(depth + 1, path);
      return;
    }
    if (c === '"') {
      const start = this.at;
      const raw = this.token(STRING);
      if (raw === null) this.fail(`has a malformed string at character ${this.at}`);
      this.wellFormed(raw, start, path);
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.at)) {
        this.at += literal.length;
        return;
      }
    }
    const number = this.token(NUMBER);
    if (number === null) this.fail(`has an unexpected character at ${this.at}`);
    const magnitude = Math.abs(Number(number));
    if (!(magnitude <= Number.MAX_SAFE_INTEGER)) this.fail(`has the number ${number.slice(0, 40)} at ${path}, beyond the safe integer range`);
  }

  private object(depth: number, path: string): void {
    this.at += 1;
    const keys = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.at] === '}') {
      this.at += 1;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      const raw = this.token(STRING);
      if (raw === null) this.fail(`expects a key in quotes at character ${this.at} (in ${path})`);
      const key = this.wellFormed(raw, this.at - raw.length, path);
      if (FORBIDDEN_KEYS.has(key)) this.fail(`has the forbidden key "${key}" in ${path}`);
      if (keys.has(key)) this.fail(`has the key "${key}" twice in ${path}`);
      keys.add(key);
      this.skipWhitespace();
      if (this.text[this.at] !== ':') this.fail(`expects ":" at character ${this.at}`);
      this.at += 1;
      this.value(depth, `${path}.${key}`);
      this.skipWhitespace();
      const next = this.text[this.at];
      this.at += 1;
      if (next === '}') return;
      if (next !== ',') this.fail(`expects "," or "}" at character ${this.at - 1}`);
    }
  }

  private array(depth: number, path: string): void {
    this.at += 1;
    this.skipWhitespace();
    if (this.text[this.at] === ']') {
      this.at += 1;
      return;
    }
    for (let index = 0; ; index++) {
      this.value(depth, `${path}.${index}`);
      this.skipWhitespace();
      const next = this.text[this.at];
      this.at += 1;
      if (next === ']') return;
      if (next !== ',') this.fail(`expects "," or "]" at character ${this.at - 1}`);
    }
  }
}
