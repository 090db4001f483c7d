// Builds the bundle for a target: node scripts/build.mjs [--target NAME] (default node18),
// and the target's package (.deb, .ipk) when its build.json describes one.
// targets/NAME/build.json gives the esbuild settings on top of the shared ones, the output
// file and the size budget; the build fails when the bundle outgrows its budget.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { baseOptions } from './esbuild-options.mjs';
import { internalNamesPattern } from './internal-names.mjs';
import { buildPackage } from './packaging/package.mjs';

const args = process.argv.slice(2);
const targetIndex = args.indexOf('--target');
const target = targetIndex >= 0 ? args[targetIndex + 1] : 'node18';
const settings = JSON.parse(readFileSync(path.join('targets', target, 'build.json'), 'utf8'));
mkdirSync(path.dirname(settings.output), { recursive: true });
// A minified bundle also shortens the member names no one outside the program sees (scripts/internal-names.mjs).
const mangle = settings.esbuild.minify ? { mangleProps: internalNamesPattern().pattern } : {};
const result = await build({
  ...baseOptions,
  ...settings.esbuild,
  ...mangle,
  entryPoints: ['src/cli/entry.ts'],
  outfile: settings.output,
  metafile: true,
  banner: { js: '#!/usr/bin/env node' },
});
writeFileSync(`${settings.output}.meta.json`, JSON.stringify(result.metafile));
chmodSync(settings.output, 0o755);
const size = statSync(settings.output).size;
console.log(`${settings.output} ${(size / 1024).toFixed(1)} KB (target ${target}, budget ${settings.budgetBytes / 1024} KB)`);
if (size > settings.budgetBytes) {
  console.error(`bundle over budget: inspect ${settings.output}.meta.json`);
  process.exit(1);
}
if (settings.package) {
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
  const file = buildPackage(target, settings, version);
  console.log(`${file} ${(statSync(file).size / 1024).toFixed(1)} KB`);
}
