/*
 * SIP messages (RFC 3261 s7): a start line, headers in their order, a body. Header names are
 * case-insensitive and some have compact forms (s7.3.3); they are kept in one canonical
 * spelling so lookups are plain string compares.
 */
export interface SipRequest {
  readonly kind: 'request';
  readonly method: string;
  readonly uri: string;
  readonly headers: SipHeaders;
  readonly body: Uint8Array;
}

export interface SipResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
  readonly headers: SipHeaders;
  readonly body: Uint8Array;
}

export type SipMessage = SipRequest | SipResponse;

/** RFC 3261 s7.3.3 and later RFCs' compact forms. */
const COMPACT = new Map<string, string>(Object.entries({
  a: 'Accept-Contact',
  b: 'Referred-By',
  c: 'Content-Type',
  d: 'Request-Disposition',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  o: 'Event',
  r: 'Refer-To',
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events',
  v: 'Via',
  x: 'Session-Expires',
  y: 'Identity',
}));

/** Spellings that title-casing would get wrong. Maps, not objects: a header named `constructor` or `__proto__` is only a name. */
const SPECIAL = new Map<string, string>(Object.entries({
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  'record-route': 'Record-Route',
  rack: 'RAck',
  rseq: 'RSeq',
}));

/** Headers whose values hold commas that do not separate values (s7.3.1). */
const UNSPLITTABLE = new Set(['WWW-Authenticate', 'Authorization', 'Proxy-Authenticate', 'Proxy-Authorization', 'Date', 'Subject', 'User-Agent', 'Server', 'Call-ID', 'CSeq', 'Content-Type']);

export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return (lower.length === 1 ? COMPACT.get(lower) : SPECIAL.get(lower)) ?? lower.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

export class SipHeaders {
  private readonly entries: [string, string][] = [];

  static of(pairs: readonly (readonly [string, string])[]): SipHeaders {
    const headers = new SipHeaders();
    for (const [name, value] of pairs) headers.add(name, value);
    return headers;
  }

  add(name: string, value: string): this {
    this.entries.push([canonicalHeaderName(name), value]);
    return this;
  }

  /** Puts a header before all others (a proxy's new Via, s16.6 step 8). */
  prepend(name: string, value: string): this {
    this.entries.unshift([canonicalHeaderName(name), value]);
    return this;
  }

  set(name: string, value: string): this {
    this.remove(name);
    return this.add(name, value);
  }

  remove(name: string): this {
    const canonical = canonicalHeaderName(name);
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i][0] === canonical) this.entries.splice(i, 1);
    return this;
  }

  /** Removes the first value of a possibly comma-joined header (the top Via, s16.7 step 3). */
  removeFirstValue(name: string): void {
    const canonical = canonicalHeaderName(name);
    const i = this.entries.findIndex(([n]) => n === canonical);
    if (i < 0) return;
    const values = splitHeaderValues(this.entries[i][1]);
    if (values.length <= 1) this.entries.splice(i, 1);
    else this.entries[i] = [canonical, values.slice(1).join(', ')];
  }

  /** Replaces the first value of a possibly comma-joined header (the top Via, stamped with where it came from). */
  replaceFirstValue(name: string, value: string): void {
    const canonical = canonicalHeaderName(name);
    const i = this.entries.findIndex(([n]) => n === canonical);
    if (i < 0) return;
    const values = splitHeaderValues(this.entries[i][1]);
    this.entries[i] = [canonical, [value, ...values.slice(1)].join(', ')];
  }

  has(name: string): boolean {
    const canonical = canonicalHeaderName(name);
    return this.entries.some(([n]) => n === canonical);
  }

  /** The first value (for headers that may appear once). */
  get(name: string): string | undefined {
    return this.getAll(name)[0];
  }

  /** Every value, in order, comma-separated lines split into their values where the header allows it. */
  getAll(name: string): string[] {
    const canonical = canonicalHeaderName(name);
    const out: string[] = [];
    for (const [n, v] of this.entries) {
      if (n !== canonical) continue;
      if (UNSPLITTABLE.has(n)) out.push(v);
      else out.push(...splitHeaderValues(v));
    }
    return out;
  }

  /** How many values a header has, over all its lines. */
  count(name: string): number {
    return this.getAll(name).length;
  }

  /** Every raw line, in order (for serialising and copying). */
  lines(): readonly (readonly [string, string])[] {
    return this.entries;
  }

  clone(): SipHeaders {
    return SipHeaders.of(this.entries);
  }
}

/** Splits a header value on commas outside quotes and angle brackets (s7.3.1). */
export function splitHeaderValues(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angle++;
    else if (c === '>') angle = Math.max(0, angle - 1);
    else if (c === ',' && angle === 0) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter((v) => v.length > 0);
}
