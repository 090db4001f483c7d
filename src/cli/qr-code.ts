/*
 * A small QR code encoder (ISO/IEC 18004) for showing an invitation token in a terminal: byte
 * mode, error correction level L, versions 1 to 10 (up to 271 bytes), mask chosen by the
 * standard's penalty rules. Written for this one job; ~200 lines beat a dependency on a router.
 */

/** Per version 1..10 at level L: EC codewords per block, and the blocks' data codeword counts. */
const LEVEL_L: readonly (readonly [number, readonly number[]])[] = [
  [7, [19]],
  [10, [34]],
  [15, [55]],
  [20, [80]],
  [26, [108]],
  [18, [68, 68]],
  [20, [78, 78]],
  [24, [97, 97]],
  [30, [116, 116]],
  [18, [68, 68, 69, 69]],
];
const ALIGNMENT_CENTERS: readonly (readonly number[])[] = [[], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];
const EC_LEVEL_L_BITS = 0b01;

// GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++, x = (x << 1) ^ (x & 0x80 ? 0x11d : 0)) {
  EXP[i] = x;
  LOG[x] = i;
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
const mul = (a: number, b: number): number => (a && b ? EXP[LOG[a] + LOG[b]] : 0);

/** Reed-Solomon error correction codewords for one block. */
export function reedSolomon(data: readonly number[], ecCount: number): number[] {
  // Generator: product of (x - 2^i) for i < ecCount, highest coefficient first (leading 1 dropped).
  let generator = [1];
  for (let i = 0; i < ecCount; i++) {
    const next = new Array<number>(generator.length + 1).fill(0);
    generator.forEach((c, j) => {
      next[j] ^= c;
      next[j + 1] ^= mul(c, EXP[i]);
    });
    generator = next;
  }
  const remainder = new Array<number>(ecCount).fill(0);
  for (const byte of data) {
    const factor = byte ^ (remainder.shift() as number);
    remainder.push(0);
    for (let j = 0; j < ecCount; j++) remainder[j] ^= mul(generator[j + 1], factor);
  }
  return remainder;
}

function codewords(data: Uint8Array): { version: number; words: number[] } {
  const version = LEVEL_L.findIndex(([, blocks], v) => blocks.reduce((a, b) => a + b, 0) * 8 >= 4 + (v < 9 ? 8 : 16) + data.length * 8) + 1;
  if (version === 0) throw new RangeError('too long for a version 1-10 QR code');
  const [ecCount, blocks] = LEVEL_L[version - 1];
  const capacity = blocks.reduce((a, b) => a + b, 0);
  const bits: number[] = [];
  const put = (value: number, length: number): void => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(0b0100, 4); // byte mode
  put(data.length, version < 10 ? 8 : 16);
  for (const byte of data) put(byte, 8);
  put(0, Math.min(4, capacity * 8 - bits.length));
  while (bits.length % 8) bits.push(0);
  const bytes: number[] = [];
  for (let i = 0; i < bits.length; i += 8) bytes.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let pad = 0xec; bytes.length < capacity; pad ^= 0xec ^ 0x11) bytes.push(pad);
  // Split into blocks, add EC to each, then interleave column by column.
  const dataBlocks: number[][] = [];
  let offset = 0;
  for (const size of blocks) {
    dataBlocks.push(bytes.slice(offset, offset + size));
    offset += size;
  }
  const ecBlocks = dataBlocks.map((b) => reedSolomon(b, ecCount));
  const words: number[] = [];
  for (let i = 0; i < Math.max(...blocks); i++) for (const b of dataBlocks) if (i < b.length) words.push(b[i]);
  for (let i = 0; i < ecCount; i++) for (const b of ecBlocks) words.push(b[i]);
  return { version, words };
}

/** BCH remainder of `value << degree(poly)` by `poly`. */
function bch(value: number, poly: number): number {
  const degree = 31 - Math.clz32(poly);
  let r = value << degree;
  for (let bit = 31 - Math.clz32(r); bit >= degree; bit--) if ((r >>> bit) & 1) r ^= poly << (bit - degree);
  return (value << degree) | r;
}

const MASKS: readonly ((r: number, c: number) => boolean)[] = [
  (r, c) => (r + c) % 2 === 0,
  (r) => r % 2 === 0,
  (_, c) => c % 3 === 0,
  (r, c) => (r + c) % 3 === 0,
  (r, c) => (Math.floor(r / 2) + Math.floor(c / 3)) % 2 === 0,
  (r, c) => ((r * c) % 2) + ((r * c) % 3) === 0,
  (r, c) => (((r * c) % 2) + ((r * c) % 3)) % 2 === 0,
  (r, c) => (((r + c) % 2) + ((r * c) % 3)) % 2 === 0,
];

class Matrix {
  readonly dark: boolean[][];
  readonly reserved: boolean[][];
  constructor(readonly size: number) {
    this.dark = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
    this.reserved = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
  }
  set(r: number, c: number, dark: boolean): void {
    if (r < 0 || c < 0 || r >= this.size || c >= this.size) return;
    this.dark[r][c] = dark;
    this.reserved[r][c] = true;
  }
}

function drawFunctionPatterns(m: Matrix, version: number): void {
  const n = m.size;
  for (const [r0, c0] of [[0, 0], [0, n - 7], [n - 7, 0]]) {
    // Finder pattern with its light separator ring.
    for (let r = -1; r <= 7; r++) for (let c = -1; c <= 7; c++) {
      const ring = Math.max(Math.abs(r - 3), Math.abs(c - 3));
      m.set(r0 + r, c0 + c, ring !== 2 && ring !== 4);
    }
  }
  for (let i = 8; i < n - 8; i++) {
    m.set(6, i, i % 2 === 0);
    m.set(i, 6, i % 2 === 0);
  }
  const centers = ALIGNMENT_CENTERS[version - 1];
  for (const r of centers) for (const c of centers) {
    if ((r === 6 && c === 6) || (r === 6 && c === centers[centers.length - 1]) || (c === 6 && r === centers[centers.length - 1])) continue;
    for (let dr = -2; dr <= 2; dr++) for (let dc = -2; dc <= 2; dc++) m.set(r + dr, c + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
  }
  drawFormat(m, 0); // reserve the format areas (and the dark module)
  if (version >= 7) {
    const bits = bch(version, 0x1f25);
    for (let i = 0; i < 18; i++) {
      const bit = ((bits >>> i) & 1) === 1;
      const a = Math.floor(i / 3);
      const b = n - 11 + (i % 3);
      m.set(a, b, bit);
      m.set(b, a, bit);
    }
  }
}

function drawFormat(m: Matrix, mask: number): void {
  const n = m.size;
  const bits = bch((EC_LEVEL_L_BITS << 3) | mask, 0x537) ^ 0x5412;
  const bit = (i: number): boolean => ((bits >>> i) & 1) === 1;
  for (let i = 0; i <= 5; i++) m.set(i, 8, bit(i));
  m.set(7, 8, bit(6));
  m.set(8, 8, bit(7));
  m.set(8, 7, bit(8));
  for (let i = 9; i < 15; i++) m.set(8, 14 - i, bit(i));
  for (let i = 0; i < 8; i++) m.set(8, n - 1 - i, bit(i));
  for (let i = 8; i < 15; i++) m.set(n - 15 + i, 8, bit(i));
  m.set(n - 8, 8, true);
}

function placeData(m: Matrix, words: readonly number[]): void {
  const n = m.size;
  let index = 0;
  // Two-column strips from the right, zigzagging up and down, skipping the vertical timing column.
  for (let right = n - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let step = 0; step < n; step++) {
      const upward = ((right + 1) & 2) === 0;
      const r = upward ? n - 1 - step : step;
      for (const c of [right, right - 1]) {
        if (m.reserved[r][c]) continue;
        const bit = index < words.length * 8 ? (words[index >>> 3] >>> (7 - (index & 7))) & 1 : 0;
        m.dark[r][c] = bit === 1;
        index++;
      }
    }
  }
}

function applyMask(m: Matrix, mask: number): void {
  for (let r = 0; r < m.size; r++) for (let c = 0; c < m.size; c++) if (!m.reserved[r][c] && MASKS[mask](r, c)) m.dark[r][c] = !m.dark[r][c];
}

function penalty(d: readonly boolean[][]): number {
  const n = d.length;
  let score = 0;
  const line = (get: (i: number) => boolean): void => {
    let run = 1;
    for (let i = 1; i <= n; i++) {
      if (i < n && get(i) === get(i - 1)) run++;
      else {
        if (run >= 5) score += run - 2;
        run = 1;
      }
    }
    const pattern = [true, false, true, true, true, false, true];
    for (let i = 0; i + 7 <= n; i++) {
      if (!pattern.every((p, k) => get(i + k) === p)) continue;
      const lightBefore = i >= 4 && [1, 2, 3, 4].every((k) => !get(i - k));
      const lightAfter = i + 11 <= n && [7, 8, 9, 10].every((k) => !get(i + k));
      if (lightBefore || lightAfter) score += 40;
    }
  };
  for (let r = 0; r < n; r++) line((i) => d[r][i]);
  for (let c = 0; c < n; c++) line((i) => d[i][c]);
  let darkCount = 0;
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
    if (d[r][c]) darkCount++;
    if (r + 1 < n && c + 1 < n && d[r][c] === d[r + 1][c] && d[r][c] === d[r][c + 1] && d[r][c] === d[r + 1][c + 1]) score += 3;
  }
  return score + 10 * Math.floor(Math.abs((darkCount * 100) / (n * n) - 50) / 5);
}

/** The QR code's modules, true for dark, without the quiet zone. */
export function encodeQrCode(text: string): boolean[][] {
  const { version, words } = codewords(new TextEncoder().encode(text));
  let best: { score: number; matrix: Matrix } | undefined;
  for (let mask = 0; mask < 8; mask++) {
    const m = new Matrix(17 + 4 * version);
    drawFunctionPatterns(m, version);
    placeData(m, words);
    applyMask(m, mask);
    drawFormat(m, mask);
    const score = penalty(m.dark);
    if (!best || score < best.score) best = { score, matrix: m };
  }
  return best!.matrix.dark;
}

/** Two module rows per text line with half blocks, black on a white background whatever the terminal's theme. */
export function renderQrCode(text: string, quiet = 2): string {
  const modules = encodeQrCode(text);
  const n = modules.length + 2 * quiet;
  const dark = (r: number, c: number): boolean => modules[r - quiet]?.[c - quiet] ?? false;
  const lines: string[] = [];
  for (let r = 0; r < n; r += 2) {
    let line = '\x1b[47m\x1b[30m';
    for (let c = 0; c < n; c++) {
      const top = dark(r, c);
      const bottom = r + 1 < n && dark(r + 1, c);
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    lines.push(`${line}\x1b[0m`);
  }
  return lines.join('\n');
}
