// Turns a target's bundle into its package: a .deb (Debian, Raspberry Pi OS) or an .ipk
// (OpenWrt). What goes where is read from targets/NAME/build.json ("package"); the files
// themselves (service wrapper, default configuration, maintainer scripts) sit beside it.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ar, MTIME, tarGz } from './archive.mjs';

/** Directories of every file, parents first, each once. */
function withDirectories(files) {
  const dirs = new Set();
  for (const file of files) {
    const parts = file.path.split('/').slice(1, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(`./${parts.slice(0, i).join('/')}/`);
  }
  return [...[...dirs].sort().map((dir) => ({ path: dir, mode: 0o755 })), ...files];
}

/** The payload as build.json lists it: [{ from, to, mode }], `from` relative to the target folder or '@bundle'. */
function payload(target, settings, bundle, version) {
  return settings.package.files.map(({ from, to, mode, gzip }) => {
    const data = from === '@bundle' ? bundle : from === '@changelog' ? changelog(settings.package, version) : readFileSync(path.join('targets', target, from));
    return { path: `.${to}`, mode: Number.parseInt(mode ?? '644', 8), data: gzip ? gzipSync(data, { level: 9 }) : data };
  });
}

/** A native package's changelog (Debian policy 12.7), gzipped without a timestamp. */
function changelog(pkg, version) {
  const date = new Date(MTIME * 1000).toUTCString().replace('GMT', '+0000');
  const text = `${pkg.name} (${version}) unstable; urgency=medium\n\n  * Release ${version}: see the README for what it does.\n\n -- ${pkg.maintainer}  ${date}\n`;
  return gzipSync(Buffer.from(text), { level: 9 });
}

function controlText(fields) {
  return `${Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')}\n`;
}

export function buildPackage(target, settings, version) {
  const pkg = settings.package;
  const bundle = readFileSync(settings.output);
  const files = payload(target, settings, bundle, version);
  const installedKb = Math.ceil(files.reduce((n, f) => n + f.data.length, 0) / 1024);
  const scripts = Object.entries(pkg.scripts ?? {}).map(([name, from]) => ({ path: `./${name}`, mode: 0o755, data: readFileSync(path.join('targets', target, from)) }));
  const conffiles = files.filter((f) => f.path.startsWith('./etc/') && !f.path.startsWith('./etc/init.d/')).map((f) => f.path.slice(1));
  const control = {
    Package: pkg.name,
    Version: version,
    Architecture: pkg.architecture,
    Maintainer: pkg.maintainer,
    'Installed-Size': installedKb,
    Depends: pkg.depends,
    Section: pkg.section,
    Priority: 'optional',
    Homepage: pkg.homepage,
    Description: pkg.description,
  };
  const data = tarGz(withDirectories(files));
  const out = path.join(path.dirname(settings.output), `${pkg.name}_${version}_${pkg.architecture}.${pkg.format}`);
  if (pkg.format === 'deb') {
    const md5sums = files.map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.path.slice(2)}`).join('\n') + '\n';
    const controlTar = tarGz([
      { path: './', mode: 0o755 },
      { path: './control', mode: 0o644, data: Buffer.from(controlText(control)) },
      { path: './md5sums', mode: 0o644, data: Buffer.from(md5sums) },
      ...(conffiles.length ? [{ path: './conffiles', mode: 0o644, data: Buffer.from(`${conffiles.join('\n')}\n`) }] : []),
      ...scripts,
    ]);
    writeFileSync(out, ar([
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: 'control.tar.gz', data: controlTar },
      { name: 'data.tar.gz', data },
    ]));
  } else {
    // opkg's .ipk: a gzipped tar holding the same three members (OpenWrt's ipkg-build).
    const controlTar = tarGz([
      { path: './', mode: 0o755 },
      { path: './control', mode: 0o644, data: Buffer.from(controlText({ ...control, 'Installed-Size': installedKb * 1024, Source: pkg.name, SourceName: pkg.name, License: 'MIT' })) },
      ...(conffiles.length ? [{ path: './conffiles', mode: 0o644, data: Buffer.from(`${conffiles.join('\n')}\n`) }] : []),
      ...scripts,
    ]);
    writeFileSync(out, tarGz([
      { path: './debian-binary', mode: 0o644, data: Buffer.from('2.0\n') },
      { path: './data.tar.gz', mode: 0o644, data },
      { path: './control.tar.gz', mode: 0o644, data: controlTar },
    ]));
  }
  return out;
}
