import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The RFC 4475 torture messages written for this project (test/integration/sip-torture/README.md). */
export const TORTURE_DIR = path.resolve('test/integration/sip-torture');

/** Every torture message's name (its file without `.sip`). */
export function tortureNames(): string[] {
  return readdirSync(TORTURE_DIR)
    .filter((f) => f.endsWith('.sip'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** A torture message with its placeholders filled in. */
export function tortureMessage(name: string, values: Record<string, string>): Buffer {
  let text = readFileSync(path.join(TORTURE_DIR, `${name}.sip`), 'utf8');
  text = text.replace(/@REPEAT\((\d+),([^)]*)\)@/g, (_, n: string, piece: string) => piece.repeat(Number(n)));
  const all: Record<string, string> = { BEL: '\x07', NUL: '\x00', DEL: '\x7f', ROUND: '1', AUTH: '', ...values };
  for (const [key, value] of Object.entries(all)) text = text.replaceAll(`@${key}@`, value);
  const [head, tail] = text.replace(/\n/g, '\r\n').split('@BINARY@');
  let bytes = tail === undefined ? Buffer.from(head) : Buffer.concat([Buffer.from(head), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(tail)]);
  const len = bytes.indexOf('@LEN@');
  if (len >= 0) {
    const bodyStart = bytes.indexOf('\r\n\r\n', len) + 4;
    bytes = Buffer.concat([bytes.subarray(0, len), Buffer.from(String(bytes.length - bodyStart)), bytes.subarray(len + 5)]);
  }
  return bytes;
}
