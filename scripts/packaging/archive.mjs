// Archive writers for packages, in plain JS so a package builds on any machine with Node:
// ustar (POSIX.1-1988) tar members and the System V `ar` format that .deb files use.
// Entries are owned by root and dated SOURCE_DATE_EPOCH, else the last commit's time: builds of
// one commit are byte for byte the same.
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';

export const MTIME = Number(process.env.SOURCE_DATE_EPOCH ?? lastCommitTime());

function lastCommitTime() {
  try {
    return execFileSync('git', ['log', '-1', '--format=%ct'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || Math.floor(Date.now() / 1000);
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}

/** entries: { path: './usr/bin/x' (dirs end with '/'), mode, data?: Buffer } in order. */
export function tarGz(entries) {
  const blocks = [];
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    blocks.push(tarHeader(entry.path, entry.mode, entry.path.endsWith('/') ? 0 : data.length, entry.path.endsWith('/') ? '5' : '0'));
    if (!entry.path.endsWith('/')) {
      blocks.push(data);
      const pad = (512 - (data.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

function tarHeader(name, mode, size, type) {
  const header = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 154);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  header.write(base, 0, 100);
  octal(header, 100, 8, mode);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, MTIME);
  header.fill(' ', 148, 156);
  header.write(type, 156, 1);
  header.write('ustar\u000000', 257, 8);
  header.write('root', 265, 32);
  header.write('root', 297, 32);
  header.write(prefix, 345, 155);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  return header;
}

function octal(buffer, offset, length, value) {
  buffer.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length);
}

/** members: [{ name, data }] as an `ar` archive (the .deb container, deb(5)). */
export function ar(members) {
  const parts = [Buffer.from('!<arch>\n')];
  for (const { name, data } of members) {
    const header = `${name.padEnd(16)}${String(MTIME).padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
    parts.push(Buffer.from(header), data);
    if (data.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}
