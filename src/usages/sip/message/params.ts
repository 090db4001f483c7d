import { badRequest } from '../sip-error.js';

/*
 * The `;name=value` parameters that follow URIs, Via and name-addr values (RFC 3261 s25.1),
 * and quoted strings with backslash escapes (s25.1 quoted-pair). Names are case-insensitive.
 */
export type Params = Map<string, string | null>;

/**
 * Calls `visit` with the index of every character outside double-quoted strings (backslash
 * escapes honoured) until it returns true; returns that index, or -1. Throws on an unterminated quote.
 */
export function scanOutsideQuotes(text: string, visit: (c: string, i: number) => boolean): number {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (visit(c, i)) return i;
  }
  if (quoted) throw badRequest('unterminated quoted string');
  return -1;
}

/** Splits on `separator` outside double quotes. */
export function splitOutsideQuotes(text: string, separator: string): string[] {
  const out: string[] = [];
  let start = 0;
  scanOutsideQuotes(text, (c, i) => {
    if (c === separator) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
    return false;
  });
  out.push(text.slice(start));
  return out;
}

/** Parses `;a=1;b;c="x y"` (the leading `;` already removed from each piece). */
export function parseParams(pieces: readonly string[]): Params {
  const params: Params = new Map();
  for (const piece of pieces) {
    const trimmed = piece.trim();
    if (!trimmed) continue;
    const eq = trimmed.indexOf('=');
    const name = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim().toLowerCase();
    if (!/^[a-z0-9\-.!%*_+`'~]+$/.test(name)) throw badRequest(`malformed parameter ${name || '(empty)'}`);
    params.set(name, eq < 0 ? null : unquote(trimmed.slice(eq + 1).trim()));
  }
  return params;
}

export function formatParams(params: Params): string {
  let out = '';
  for (const [name, value] of params) out += value === null ? `;${name}` : `;${name}=${needsQuotes(value) ? quote(value) : value}`;
  return out;
}

export function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) throw badRequest('unterminated quoted string');
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

export function quote(value: string): string {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

function needsQuotes(value: string): boolean {
  return !/^[A-Za-z0-9\-.!%*_+`'~:\[\]]*$/.test(value);
}
